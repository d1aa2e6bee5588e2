package main

import (
	"strings"
	"testing"
)

const wrkOutput = `Running 15s test @ http://127.0.0.1:40000
  2 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    11.73ms    8.21ms  97.55ms   71.77%
    Req/Sec     3.92k   412.00     4.90k    70.00%
  Latency Distribution
     50%   10.21ms
     75%   15.02ms
     90%   21.99ms
     99%   40.35ms
  117236 requests in 15.02s, 16.80GB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   7805.33
Transfer/sec:      1.12GB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 117236, Seconds: 15.02, RPS: 7805.33, Non2xx: 7,
		SocketErrs: "connect 0, read 0, write 0, timeout 3", LatencyP50: "10.21ms", LatencyP99: "40.35ms", BytesPerSec: "1.12GB"}
	if r != want {
		t.Errorf("parseWrk =\n%+v\nwant\n%+v", r, want)
	}
	if _, err := parseWrk("wrk: connection refused"); err == nil {
		t.Error("output without a request count was accepted")
	}
}

func TestWrkScript(t *testing.T) {
	s := wrkScript([]string{"/a.m3u8?s=1", `/b"c.ts`}, map[string]string{"Cookie": "onair_play=v1.a.b", "X-B": "2"})
	if !strings.Contains(s, `{"/a.m3u8?s=1", "/b\"c.ts"}`) {
		t.Errorf("paths not quoted for Lua:\n%s", s)
	}
	if !strings.HasPrefix(s, "wrk.headers[\"Cookie\"] = \"onair_play=v1.a.b\"\nwrk.headers[\"X-B\"] = \"2\"\n") {
		t.Errorf("headers not set first, in order:\n%s", s)
	}
	if strings.Contains(wrkScript([]string{"/a"}, nil), "wrk.headers") {
		t.Error("headers set without any")
	}
}
