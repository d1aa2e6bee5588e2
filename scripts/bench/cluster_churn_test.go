package main

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestLongestGap(t *testing.T) {
	arr := []float64{0.5, 1.0, 1.2, 3.0, 3.1, 9.0}
	for _, c := range []struct{ from, to, want, at float64 }{
		{1.0, 3.1, 1.8, 1.2},  // 1.2 → 3.0
		{0, 1.1, 0.5, 0},      // from → 0.5, then 0.5 → 1.0
		{3.05, 8, 4.9, 3.1},   // 3.1 → the end
		{4, 6, 2, 4},          // nothing arrives
		{-1, 0.2, 1.2, -1},    // the window ends before the first
		{0.5, 0.5, 0.0, 0},    // empty window
		{0.9, 1.25, 0.2, 1.0}, // 1.0 → 1.2
	} {
		if got, at := longestGap(arr, c.from, c.to); math.Abs(got-c.want) > 1e-9 || math.Abs(at-c.at) > 1e-9 {
			t.Errorf("longestGap(%v, %v) = %v from %v, want %v from %v", c.from, c.to, got, at, c.want, c.at)
		}
	}
}

// A three-node run: room 0 moves from A to B when A restarts, then to A when B does;
// room 1 from C to A, a second after C's SIGTERM.
func churnFixture() (*churnResults, []churnWatch) {
	every := func(from, to float64) []float64 { // a part every 0.25 s, exact in binary
		var out []float64
		for x := from; x < to; x += 0.25 {
			out = append(out, x)
		}
		return out
	}
	r := &churnResults{
		SteadyFromS: 5, EndS: 40,
		Restarts: []churnRestart{{Node: "A", AtS: 10}, {Node: "B", AtS: 20}, {Node: "C", AtS: 30}},
		Rooms: []churnRoom{
			{Room: "churn-0", Sessions: []churnSession{{Node: "A", StartS: 0, EndS: 10.1, LiveS: 0.5, SentS: 9.6},
				{Node: "B", StartS: 10.1, EndS: 20.1, LiveS: 10.6, SentS: 9.5}, {Node: "A", StartS: 20.1, EndS: 40, LiveS: 20.6, SentS: 19.4}},
				Broadcasts: 3, Ready: 3, RecordedS: 38.5},
			// A refused attempt on B between its sessions on C and A.
			{Room: "churn-1", Sessions: []churnSession{{Node: "C", StartS: 0, EndS: 30.2, LiveS: 0.5, SentS: 29.7},
				{Node: "B", StartS: 30.2, EndS: 30.4}, {Node: "A", StartS: 31.4, EndS: 40, LiveS: 31.7, SentS: 8.3}},
				Broadcasts: 2, Ready: 2, RecordedS: 36},
		},
	}
	return r, []churnWatch{
		// Through A: waits 2 s for A to come back.
		{node: "A", room: 1, arrivals: slices.Concat(every(0, 10), every(12, 40))},
		// Room 0 through C: 1.5 s while its publisher moves away from A, 0.75 s at 25 s.
		{node: "C", room: 0, arrivals: slices.Concat(every(0, 10), every(11.5, 25), every(25.5, 30), every(32, 40))},
		// Room 1 through B: 1 s at 15 s, while A restarts.
		{node: "B", room: 1, arrivals: slices.Concat(every(0, 15), every(15.75, 40)),
			errs: []churnNote{{15, "media playlist: HTTP 404"}, {15.5, "media playlist: HTTP 404"}, {16, "EOF"}}},
	}
}

func TestChurnStalls(t *testing.T) {
	r, watched := churnFixture()
	if baseline := churnStalls(r, watched); baseline != 0.25 {
		t.Errorf("baseline %v", baseline)
	}
	want := []churnRestart{
		{Node: "A", AtS: 10, OtherS: 1, OtherWho: "player 2: churn-1 on C, through B, from 14.8 s; it joined again after: media playlist: HTTP 404 (×2)", MovedS: 1.5, ThroughS: 2},
		// Room 0 was on B at 20 s, so its player through C is in the moved group.
		{Node: "B", AtS: 20, OtherS: 0.25, OtherWho: "player 0: churn-1 on C, through A, from 20.0 s", MovedS: 0.75, ThroughS: 0.25},
		{Node: "C", AtS: 30, MovedS: 0.25, ThroughS: 2}, // until the end, 40 s
	}
	if !slices.Equal(r.Restarts, want) {
		t.Errorf("restarts = %+v\nwant %+v", r.Restarts, want)
	}
	if r.Rooms[1].nodeAt(30.5) != "" || r.Rooms[1].nodeAt(31.5) != "A" {
		t.Error("nodeAt")
	}
}

func TestChurnRooms(t *testing.T) {
	r, _ := churnFixture()
	r0, r1 := r.Rooms[0], r.Rooms[1]
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if p, gaps, n := r0.media(); !near(p, 38.5) || !near(gaps, 1) || n != 3 || r0.missingS() != 0 || !r0.complete() {
		t.Errorf("room 0: published %v in %d sessions, gaps %v, missing %v per session", p, n, gaps, r0.missingS())
	}
	if p, gaps, n := r1.media(); !near(p, 38) || !near(gaps, 1.5) || n != 2 || !near(r1.missingS(), 1) || r1.complete() {
		t.Errorf("room 1: published %v in %d sessions, gaps %v, missing %v per session", p, n, gaps, r1.missingS())
	}
	r1.RecordedS = 38
	if !r1.complete() {
		t.Error("room 1 recorded whole, yet not complete")
	}
	r1.Ready = 1
	if r1.complete() {
		t.Error("a broadcast without a replay, yet complete")
	}
	// Media sent in a session without a broadcast is lost.
	r1.Sessions[1].SentS, r1.Ready = 5, 2
	if p, _, n := r1.media(); !near(p, 43) || n != 3 || r1.complete() {
		t.Errorf("a lost session: sent %v in %d sessions", p, n)
	}
}

func TestViewerSummary(t *testing.T) {
	var v viewerSummary
	v.add("A", 1, []int{8, 9}, []int{8, 8})
	v.add("B", 1, []int{6, 8}, []int{8, 8})
	v.add("C", 1, []int{-1, 0}, []int{8, 8}) // one unread: no sum
	want := viewerSummary{Samples: 5, Exact: 2, MaxAbs: 8, Worst: "churn-1 through C at 1 s: 0 for 8 players", Unread: 1,
		TotalMin: 14, TotalMax: 17, Want: 16}
	if v != want {
		t.Errorf("viewerSummary = %+v\nwant %+v", v, want)
	}
}

func TestPromByLabelAndCounts(t *testing.T) {
	text := "# HELP onair_hls_requests_total x\nonair_hls_requests_total{kind=\"part\"} 12\n" +
		"onair_hls_requests_total{kind=\"playlist\"} 3.5\nonair_hls_requests_total_x 9\nonair_hls_requests_total 1\n"
	got := promByLabel(text, "onair_hls_requests_total")
	if len(got) != 3 || got[`kind="part"`] != 12 || got[`kind="playlist"`] != 3.5 || got[""] != 1 {
		t.Errorf("promByLabel = %v", got)
	}
	if promSum(text, "onair_hls_requests_total") != 16.5 {
		t.Error("promSum")
	}
	if n, err := parseCounts("10, 100,500"); err != nil || !slices.Equal(n, []int{10, 100, 500}) {
		t.Errorf("parseCounts = %v, %v", n, err)
	}
	if _, err := parseCounts("10,0"); err == nil {
		t.Error("parseCounts accepted 0")
	}
}

func TestChurnLB(t *testing.T) {
	var b churnLB
	for k := range churnNodes {
		b.swap(k, &rigNode{HTTP: nodeName(k)})
	}
	if k, n := b.pick(2); k != 2 || n.HTTP != "C" {
		t.Errorf("pick(2) = %d", k)
	}
	b.swap(0, nil)
	k1, _ := b.pick(0) // down: the least loaded, B
	k2, _ := b.pick(-1)
	k3, _ := b.pick(-1)
	if k1 != 1 || k2 != 1 && k2 != 2 || k3 == 0 {
		t.Errorf("picked %d, %d, %d", k1, k2, k3)
	}
	b.release(k1)
	if b.load != [churnNodes]int{0, 1, 2} && b.load != [churnNodes]int{0, 2, 1} {
		t.Errorf("load = %v", b.load)
	}
}

func TestChurnSection(t *testing.T) {
	r, watched := churnFixture()
	r.BaselineStallS = churnStalls(r, watched)
	r.ViewersBefore.add("A", 9, []int{1, 2}, []int{1, 2})
	r.Publishers, r.Input.BitrateKbps = 2, 2648
	r.CDN = []churnCDNRun{{Players: 10, Requests: 200, Seconds: 20, ByKind: map[string]float64{`kind="part"`: 100, `kind="init"`: 0}},
		{Players: 500, Requests: 260, Seconds: 20}}
	s := churnSection(r)
	for _, want := range []string{
		"(2648 kbit/s), room r first to node r mod 3", "watch room i mod 2 through node (room + i div 2) mod 3",
		"| 1/2 rooms (6 publisher sessions, 5 broadcasts, 0 recovered after a crash) | 2/2 | **not met** |",
		"| 1.00 s (churn-1, 2 sessions) | ≤ 0.5 s | **not met** |",
		"| 0 (2 of 2 samples exact, 0 unread; rooms' sum 3–3 for 3 players) | 0 | met |",
		"| viewer count error after the restarts: room's `viewers` − its players, worst | 0 (0 of 0 samples exact, 0 unread; rooms' sum 0–0 for 0 players) | 0 | not measured |",
		"| 1.00 s (player 2: churn-1 on C, through B, from 14.8 s; it joined again after: media playlist: HTTP 404 (×2)); before the restarts, any player: 0.25 s | ≤ 1 s | met |",
		"| CDN: origin requests/s at 500 players / at 10 | 1.30x (10.0 → 13.0 requests/s) | ≤ 1.5x | met |",
		"| 10 | 10.0 | 1.00x | part 100 |",
		"| churn-1 | C → B → A | 1.5 | 38.0 | 36.0 | 1.00 | 2/2 (0) |",
		"| A | 10.0 | 0.0 | status 0 | 0.0 | 1.00 | 1.50 | 2.00 |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
}

func TestFFmpegProgress(t *testing.T) {
	out := "out_time_us=N/A\nprogress=continue\nout_time_us=4671000\nout_time=00:00:04.671000\n" +
		"av_interleaved_write_frame(): Broken pipe\nprogress=end\nError writing trailer of rtmp://h/live/k: Broken pipe"
	if got := ffmpegSentS(out); got != 4.671 {
		t.Errorf("ffmpegSentS = %v", got)
	}
	if got := ffmpegSentS("out_time_us=N/A\n"); got != 0 {
		t.Errorf("ffmpegSentS before any media = %v", got)
	}
	if got := ffmpegErrors(out); got != "av_interleaved_write_frame(): Broken pipe\nError writing trailer of rtmp://h/live/k: Broken pipe" {
		t.Errorf("ffmpegErrors = %q", got)
	}
}

func TestShortError(t *testing.T) {
	for in, want := range map[string]string{
		"ll-hls probe: media playlist: GET http://127.0.0.1:9/live/c/v_stream.m3u8?s=1&_HLS_msn=3: HTTP 404":                                                    "ll-hls probe: media playlist: HTTP 404",
		`ll-hls probe: GET http://127.0.0.1:9/live/c/index.m3u8: Get "http://127.0.0.1:9/live/c/index.m3u8": dial tcp 127.0.0.1:9: connect: connection refused`: "ll-hls probe: dial tcp 127.0.0.1:9: connect: connection refused",
	} {
		if got := shortError(errors.New(in)); got != want {
			t.Errorf("shortError(%q) = %q, want %q", in, got, want)
		}
	}
}
