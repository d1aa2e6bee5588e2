package main

import (
	"math"
	"strings"
	"testing"
)

func TestClusterHLSTotals(t *testing.T) {
	runs := []clusterHLSRun{
		{Round: 1, Via: viaOrigin, Requests: 1000, OriginRequests: 1000, Seconds: 10, CPUA: 1.0, CPUB: 0.0},
		{Round: 1, Via: viaProxy, Requests: 600, OriginRequests: 60, Seconds: 10, CPUA: 0.3, CPUB: 0.9},
		{Round: 2, Via: viaOrigin, Requests: 1000, Seconds: 10, CPUA: 1.0, CPUB: 0.02},
		{Round: 2, Via: viaProxy, Requests: 600, Seconds: 10, CPUA: 0.3, CPUB: 0.9},
	}
	origin, proxy := clusterHLSTotals(runs)
	if origin.Runs != 2 || proxy.Runs != 2 || origin.RPS() != 100 || proxy.RPS() != 60 {
		t.Errorf("totals = %+v, %+v", origin, proxy)
	}
	if got := origin.CPUPerRequestUS(); math.Abs(got-1010) > 1e-6 {
		t.Errorf("origin CPU per request = %v µs, want 1010", got)
	}
	if got := proxy.CPUPerRequestUS(); math.Abs(got-2000) > 1e-6 {
		t.Errorf("proxy CPU per request = %v µs, want 2000", got)
	}
	if v := (clusterHLSTotal{}).CPUPerRequestUS(); !math.IsNaN(v) {
		t.Errorf("no requests: %v, want NaN", v)
	}

	s := clusterHLSSection(&clusterHLSResults{Runs: runs, Paths: []string{"/live/hls/v.m3u8", "/live/hls/s.mp4"}, WrkCommand: "wrk -t2"})
	for _, want := range []string{"| requests/s | 100 | 60 | 0.60x |", "| CPU per request, both nodes (µs) | 1010.0 | 2000.0 | 1.98x |",
		"| HLS requests node A answered, per viewer request | 0.500 | 0.050 |"} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
}
