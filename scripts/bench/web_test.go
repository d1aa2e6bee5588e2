package main

import (
	"strings"
	"testing"
)

// benchMJSOutput is what web/ui/e2e/bench.mjs printed in a real run.
const benchMJSOutput = `{
  "url": "http://127.0.0.1:41763/rooms/web-bench",
  "runs": 3,
  "first_frame_ms": {"median": 969, "min": 954, "max": 1048, "all": [969, 954, 1048]},
  "page_bytes": 119323,
  "media_bytes_to_first_frame": 92070,
  "files": [
    {"url": "/rooms/web-bench", "bytes": 5477, "encoding": ""},
    {"url": "/assets/onair-MFPQEGHF.css", "bytes": 2949, "encoding": "br"},
    {"url": "/assets/player-63NFSDQC.js", "bytes": 110897, "encoding": "br"}
  ],
  "target_first_frame_ms": 1500
}`

func TestParseWebPage(t *testing.T) {
	p, err := parseWebPage([]byte(benchMJSOutput), 3)
	if err != nil {
		t.Fatal(err)
	}
	if p.FirstFrameMS.Median != 969 || p.PageBytes != 119323 || len(p.Files) != 3 || p.Files[2].Encoding != "br" {
		t.Errorf("parsed %+v", p)
	}
	if _, err := parseWebPage([]byte(benchMJSOutput), 5); err == nil {
		t.Error("3 first-frame times were accepted for 5 runs")
	}
	if _, err := parseWebPage([]byte("Error: browser closed"), 3); err == nil {
		t.Error("non-JSON output was accepted")
	}

	s := webSection(&webResults{Page: p, PageCommand: "node web/ui/e2e/bench.mjs --runs 3"})
	for _, want := range []string{"969 ms (min 954, max 1048)", "| under 1500 ms on loopback | met |",
		"| `/rooms/web-bench` | 5477 | none |", "| **total** | 119323 |"} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	p.FirstFrameMS.Median = 1600
	if s := webSection(&webResults{Page: p}); !strings.Contains(s, "**not met**") {
		t.Errorf("a 1.6 s first frame met the target:\n%s", s)
	}
}
