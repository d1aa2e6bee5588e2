package main

import (
	"strings"
	"testing"
)

func TestPromValue(t *testing.T) {
	text := `# HELP onair_recording_spool_bytes Recording bytes on local disk waiting for object storage.
# TYPE onair_recording_spool_bytes gauge
onair_recording_spool_bytes 2.097152e+07
onair_recording_spool_bytes_total{x="y"} 7
onair_recording_parts_pending 12
onair_recordings_in_progress 10
onair_publishers{video_codec="h264",audio_codec="aac"} 10
`
	if v, ok := promValue(text, "onair_recording_spool_bytes"); !ok || v != 20971520 {
		t.Errorf("spool bytes = %v, %v", v, ok)
	}
	if _, ok := promValue(text, "onair_publishers"); ok {
		t.Error("a labelled sample was read as unlabelled")
	}
	if _, ok := promValue(text, "onair_recording"); ok {
		t.Error("a prefix of a name matched")
	}
	hls := "onair_hls_requests_total{kind=\"playlist\"} 120\nonair_hls_requests_total{kind=\"segment\"} 3e2\nonair_hls_requests_total_x 9\n"
	if got := promSum(hls, "onair_hls_requests_total"); got != 420 {
		t.Errorf("promSum = %v, want 420", got)
	}
	sp, err := parseSpool(text)
	if err != nil || sp.Bytes != 20971520 || sp.Parts != 12 || sp.Recordings != 10 {
		t.Errorf("parseSpool = %+v, %v", sp, err)
	}
	if _, err := parseSpool("go_goroutines 12\n"); err == nil {
		t.Error("metrics without the recorder's gauges were accepted")
	}
}

func TestOutageFlat(t *testing.T) {
	o := &outageResult{RSSEarlyMB: 40, RSSLateMB: 48, RSSMaxMB: 90, SpoolStartMB: 30, SpoolEndMB: 230}
	flat, rise, growth := outageFlat(o)
	if !flat || rise != 8 || growth != 200 {
		t.Errorf("outageFlat = %v, %v, %v; want flat, 8, 200", flat, rise, growth)
	}
	o.RSSLateMB = 70 // 30 MB of 200: more than 10 %
	if flat, _, _ := outageFlat(o); flat {
		t.Error("RSS rising by 15 % of the spool's growth was called flat")
	}
	o.SpoolEndMB = o.SpoolStartMB // nothing spooled: nothing shown
	if flat, _, _ := outageFlat(o); flat {
		t.Error("an outage without spool growth was called flat")
	}
}

func TestCompletionOK(t *testing.T) {
	c := &completionResult{Rooms: 2, Complete: 2, PublishedS: []float64{100.4, 100.3}, RecordedS: []float64{99.0, 100.2}}
	ok, worst := completionOK(c)
	if !ok || worst < 1.39 || worst > 1.41 {
		t.Errorf("completionOK = %v, %v; want ok, 1.4", ok, worst)
	}
	c.RecordedS[1] = 60 // a recording that lost the outage
	if ok, _ := completionOK(c); ok {
		t.Error("a recording 40 s short was called complete")
	}
	c.RecordedS[1], c.Complete = 100.2, 1
	if ok, _ := completionOK(c); ok {
		t.Error("a missing replay was called complete")
	}
}

func TestRSSTrend(t *testing.T) {
	var s []outageSample
	for i := range 60 {
		s = append(s, outageSample{RSSMB: 50 + float64(i)/10})
	}
	s[5].RSSMB = 90 // one GC swing
	early, late := rssTrend(s, 10)
	if early != 50.4 || late != 55.4 { // nearest-rank medians
		t.Errorf("rssTrend = %v, %v; want 50.4, 55.4", early, late)
	}
	early, late = rssTrend(s[:6], 10) // few samples: a third each
	if early != 50.0 || late != 50.4 {
		t.Errorf("rssTrend of 6 = %v, %v; want 50, 50.4", early, late)
	}
}

func TestSampleRange(t *testing.T) {
	s := []outageSample{{RSSMB: 5}, {RSSMB: 3}, {RSSMB: 9}, {RSSMB: 4}}
	lo, hi := sampleRange(s, func(o outageSample) float64 { return o.RSSMB })
	if lo != 3 || hi != 9 {
		t.Errorf("sampleRange = %v, %v; want 3, 9", lo, hi)
	}
}

func TestRecordSection(t *testing.T) {
	r := &recordResults{Command: "go run ./scripts/bench record -onair bin/onair", Streams: 10,
		Load: []recordLoad{
			{Recording: false, Streams: 10, Live: 10, CPUPercent: 10, RSSIdleMB: 20, RSSMeanMB: 30, WindowS: 20, WarmupS: 10},
			{Recording: true, Streams: 10, Live: 10, CPUPercent: 12, RSSIdleMB: 20, RSSMeanMB: 33, SpoolParts: 10, WindowS: 20, WarmupS: 10},
		},
		Outage: &outageResult{DownS: 61, RSSEarlyMB: 33, RSSLateMB: 35, RSSStartMB: 33, RSSEndMB: 35, RSSMinMB: 32, RSSMaxMB: 36, SpoolStartMB: 20, SpoolEndMB: 220,
			Samples: []outageSample{{AtS: 0, Phase: "down"}, {AtS: 1, Phase: "down"}, {AtS: 10.2, Phase: "down"}, {AtS: 63, Phase: "drain"}}},
		Completion: &completionResult{Rooms: 10, Complete: 10, WaitS: 2.5},
		Replay:     &replayResult{PublishS: 6, RunsMS: []float64{800, 900, 700}, URLMS: []float64{700, 800, 600}, MedianMS: 800, MaxMS: 900},
	}
	s := recordSection(r)
	for _, want := range []string{"| CPU with recording on / off, 10 streams | 1.20x (10.0 → 12.0 % of a core) |",
		"| onair RSS during a 61 s S3 outage |", "| met |", "median 800 ms, max 900 ms", "| 10 | down |", "| 63 | drain |"} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "| 1 | down |") {
		t.Error("the outage table lists every second, want every 10 s")
	}
	// A run that failed early still renders.
	if s := recordSection(&recordResults{Errors: []string{"boom"}}); !strings.Contains(s, "boom") {
		t.Errorf("errors missing from:\n%s", s)
	}
}
