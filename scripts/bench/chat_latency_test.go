package main

import (
	"math"
	"testing"
)

func TestSummarizeLatency(t *testing.T) {
	var us []int32
	for i := 1000; i >= 1; i-- { // 1..1000 ms, unsorted
		us = append(us, int32(i*1000))
	}
	l := summarizeLatency(us)
	want := chatLatency{Samples: 1000, MinMS: 1, P50MS: 500, P90MS: 900, P99MS: 990, P999MS: 999, MaxMS: 1000, MeanMS: 500.5}
	if l != want {
		t.Errorf("summary = %+v, want %+v", l, want)
	}
	if one := summarizeLatency([]int32{2500}); one.P50MS != 2.5 || one.P999MS != 2.5 || one.MinMS != 2.5 {
		t.Errorf("one sample: %+v", one)
	}
	if none := summarizeLatency(nil); none != (chatLatency{}) {
		t.Errorf("no samples: %+v", none)
	}
}

func TestLatencyMicros(t *testing.T) {
	for ns, want := range map[int64]int32{1999: 1, -5000: 0, 1 << 60: math.MaxInt32, 12_345_000: 12345} {
		if got := latencyMicros(ns); got != want {
			t.Errorf("latencyMicros(%d) = %d, want %d", ns, got, want)
		}
	}
}
