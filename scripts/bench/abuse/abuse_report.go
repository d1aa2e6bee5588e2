package abuse

import (
	"fmt"
	"maps"
	"onair/scripts/bench/benchkit"
	"slices"
	"strings"
)

// Issue 12's targets, and what counts as a player and a publisher served.
const (
	abuseTargetMB = 50
	// tokenTargetCost: private rooms' requests per CPU second may fall short of the same
	// stream's unlisted (public) figure by at most this share.
	tokenTargetCost = 0.05
	// abuseMaxGapS is the longest time without a new part that still counts as served:
	// a player holding the usual LL-HLS hold-back of three parts would have stalled well
	// before.
	abuseMaxGapS = 2.0
)

// The abuse cases, in the order they run.
const (
	caseControl = "none (control)"
	casePong    = "pong flood"
	casePreauth = "pre-auth RTMP"
	caseChat    = "chat sockets"
	caseIdle    = "idle TCP"
)

// The token runs' variants.
const (
	tokenUnlisted = "unlisted (no token)"
	tokenURL      = "private, URL token"
	tokenCookie   = "private, cookie"
)

// abuseResults is what `bench abuse` measured; it is written as JSON to
// .artifacts/bench/abuse.json and summarised in BENCHMARKS.md.
type abuseResults struct {
	benchkit.Head
	Input      benchkit.Input    `json:"input"`
	WindowS    float64           `json:"window_s"`
	AfterS     float64           `json:"after_s"`
	TargetMB   float64           `json:"target_mb"`
	Cases      []abuseCaseResult `json:"cases"`
	WrkCommand string            `json:"wrk_command"`
	Paths      []string          `json:"paths"`
	TokenRuns  []tokenRun        `json:"token_runs"`
}

// abuseCaseResult is one abuse case on a fresh node.
type abuseCaseResult struct {
	Name        string `json:"name"`
	Connections int    `json:"connections"`
	// What the attacking side saw: the most connections established at once, the dials
	// (reconnects included), connections the server ended, and dials that failed.
	PeakOpen       int64  `json:"peak_open"`
	Dials          int64  `json:"dials"`
	ClosedByServer int64  `json:"closed_by_server"`
	Failed         int64  `json:"failed"`
	FirstError     string `json:"first_error,omitempty"`
	// What onair's metrics said: the most chat sockets and RTMP connections at once, and
	// RTMP refusals by reason during the abuse.
	PeakChatSockets     float64            `json:"peak_chat_sockets"`
	PeakRTMPConnections float64            `json:"peak_rtmp_connections"`
	Refused             map[string]float64 `json:"rtmp_refused,omitempty"`
	// The Go runtime's, at their highest: goroutines, heap spans in use (live objects and
	// garbage not yet swept) and goroutine stacks.
	PeakGoroutines float64 `json:"peak_goroutines"`
	PeakHeapMB     float64 `json:"peak_heap_inuse_mb"`
	PeakStacksMB   float64 `json:"peak_stack_inuse_mb"`
	// RSS: mean before, highest during, and once the abuse had ended.
	RSSBaseMB   float64 `json:"rss_base_mb"`
	RSSPeakMB   float64 `json:"rss_peak_mb"`
	RSSAfterMB  float64 `json:"rss_after_mb"`
	CPUPercent  float64 `json:"cpu_pct"`
	MachineBusy float64 `json:"machine_busy_pct"`
	// The player and the publisher during the abuse.
	Parts         int      `json:"parts"`
	LongestGapS   float64  `json:"longest_gap_s"`
	PlayerErrors  []string `json:"player_errors,omitempty"`
	PublisherLive bool     `json:"publisher_live"`
	PublisherNote string   `json:"publisher_note,omitempty"`
}

func (r abuseCaseResult) GrowthMB() float64 { return r.RSSPeakMB - r.RSSBaseMB }

// Served says whether the publisher stayed live and the player kept getting parts.
func (r abuseCaseResult) Served() bool {
	return r.PublisherLive && r.Parts > 0 && r.LongestGapS <= abuseMaxGapS
}

// tokenRun is one wrk load of the token cost.
type tokenRun struct {
	Round       int     `json:"round"`
	Variant     string  `json:"variant"`
	Requests    int64   `json:"requests"`
	RPS         float64 `json:"rps"`
	CPUSeconds  float64 `json:"cpu_s"`
	CPUPercent  float64 `json:"cpu_pct"`
	LatencyP50  string  `json:"latency_p50"`
	LatencyP99  string  `json:"latency_p99"`
	MachineBusy float64 `json:"machine_busy_pct"`
}

func (t tokenRun) PerCPUS() float64 { return benchkit.Ratio(float64(t.Requests), t.CPUSeconds) }

// tokenTotals adds up each variant's requests and CPU seconds over the rounds, and
// returns its requests per CPU second.
func tokenTotals(runs []tokenRun) map[string]float64 {
	req, cpu := map[string]float64{}, map[string]float64{}
	for _, r := range runs {
		req[r.Variant] += float64(r.Requests)
		cpu[r.Variant] += r.CPUSeconds
	}
	out := map[string]float64{}
	for v := range req {
		out[v] = benchkit.Ratio(req[v], cpu[v])
	}
	return out
}

// tokenCost is what a private variant loses against the unlisted one: 1 − its requests
// per CPU second / theirs (negative when it did better).
func tokenCost(totals map[string]float64, variant string) (float64, bool) {
	pub, ok1 := totals[tokenUnlisted]
	priv, ok2 := totals[variant]
	return 1 - priv/pub, ok1 && ok2 && pub > 0
}

// abuseSection renders the BENCHMARKS.md section of an abuse run (without its markers).
func abuseSection(r *abuseResults) string {
	b := r.Section("Abuse: memory under hostile clients, and what playback tokens cost")
	fmt.Fprintf(b, "Each case runs on a fresh onair node (FerretDB, MinIO, the shipped limits) with a public room published by a "+
		"looping `ffmpeg -re -stream_loop -1 -i input.flv -c copy` of `%s` (%.0f kbit/s, recorded) and played by one LL-HLS player. "+
		"RSS is averaged over 4 s before the abuse (*before*), sampled every 250 ms during its %.0f s (*peak*) and read %.0f s after "+
		"(*after*); onair's ended connections are dialled again after 50 ms. *Served*: ffmpeg running, the room live and the player "+
		"getting parts with no gap over %.0f s. The cases: **pong flood**, anonymous chat sockets writing 125-byte pings without "+
		"reading (`scripts/hostile`); **pre-auth RTMP**, handshaken connections buffering unfinished messages up to "+
		"`rtmp.SetupMaxBuffered`, never publishing, %d per loopback address; **chat sockets**, idle anonymous websockets in the "+
		"room's chat; **idle TCP**, silent connections to the HTTP and RTMP ports, %d per loopback address.\n\n",
		r.Input.File, r.Input.BitrateKbps, r.WindowS, r.AfterS, abuseMaxGapS, abusePerAddress, abusePerAddress)

	b.WriteString("### Targets\n\n")
	control := 0.0
	for _, c := range r.Cases {
		if c.Name == caseControl {
			control = c.GrowthMB()
		}
	}
	fmt.Fprintf(b, "A node's RSS grows without any abuse too (the control case: +%s MB over the same window, the stream's "+
		"DVR window and recording filling up); an abuse case's growth is its own less the control's.\n\n", benchkit.F(control, 1))
	var rows [][]string
	for _, c := range r.Cases {
		if c.Name == caseControl {
			continue
		}
		growth := c.GrowthMB() - control
		rows = append(rows, []string{fmt.Sprintf("RSS growth, %s (%d connections)", c.Name, c.Connections),
			fmt.Sprintf("%s MB (%s less the control's %s); %s", benchkit.F(growth, 1), benchkit.F(c.GrowthMB(), 1), benchkit.F(control, 1), servedCell(c)),
			fmt.Sprintf("≤ %d MB, publisher and player served", abuseTargetMB), benchkit.Verdict(growth <= abuseTargetMB && c.Served(), true)})
	}
	totals := tokenTotals(r.TokenRuns)
	for _, v := range []string{tokenURL, tokenCookie} {
		cost, ok := tokenCost(totals, v)
		rows = append(rows, []string{"playback token checks, " + v + ": requests per CPU second against the same stream unlisted",
			fmt.Sprintf("%s vs %s (%s, cost %s %%)", benchkit.F(totals[v], 0), benchkit.F(totals[tokenUnlisted], 0), benchkit.X(1-cost), benchkit.F(100*cost, 1)),
			fmt.Sprintf("cost ≤ %.0f %%", 100*tokenTargetCost), benchkit.Verdict(cost <= tokenTargetCost, ok)})
	}
	b.WriteString(benchkit.Table([]string{"measure", "figure", "target", "verdict"}, rows...))

	b.WriteString("\n### Abuse cases\n\n")
	rows = nil
	for _, c := range r.Cases {
		rows = append(rows, []string{c.Name, fmt.Sprint(c.Connections),
			fmt.Sprintf("%d; %d / %d / %d", c.PeakOpen, c.Dials, c.ClosedByServer, c.Failed),
			fmt.Sprintf("%.0f / %.0f", c.PeakChatSockets, c.PeakRTMPConnections), refusedCell(c.Refused),
			fmt.Sprintf("%s → %s (+%s) → %s", benchkit.F(c.RSSBaseMB, 1), benchkit.F(c.RSSPeakMB, 1), benchkit.F(c.GrowthMB(), 1), benchkit.F(c.RSSAfterMB, 1)),
			fmt.Sprintf("%.0f; %s; %s", c.PeakGoroutines, benchkit.F(c.PeakHeapMB, 1), benchkit.F(c.PeakStacksMB, 1)), benchkit.F(c.CPUPercent, 0), fmt.Sprintf("%d, %s s", c.Parts, benchkit.F(c.LongestGapS, 2)), publisherCell(c), benchkit.F(c.MachineBusy, 0)})
	}
	b.WriteString(benchkit.Table([]string{"case", "connections", "held at most; dials / ended by onair / failed", "onair's chat sockets / RTMP connections, peak",
		"RTMP refused (reason: count)", "RSS before → peak (growth) → after (MB)",
		"Go runtime, peak: goroutines; heap in use; stacks (MB)", "onair CPU % of a core", "player: parts, longest gap",
		"publisher", "machine busy %"}, rows...))
	for _, c := range r.Cases {
		if c.FirstError != "" || len(c.PlayerErrors) > 0 {
			fmt.Fprintf(b, "\n%s: first failed dial: %s; player errors: %s.\n", c.Name, orNone(c.FirstError), orNone(strings.Join(c.PlayerErrors, "; ")))
		}
	}

	b.WriteString("\n### Playback tokens: requests per CPU second\n\n")
	fmt.Fprintf(b, "One room on a fresh node, published as above (recording off), switched between *unlisted* (served as a "+
		"public room's media) and *private*, with the URL token in the path (`/live/<playback id>/t/<token>/…`) or the playback "+
		"cookie. Load: `%s`, each connection alternating `%s`. Requests per CPU second = wrk's requests / onair's CPU seconds; "+
		"the verdicts use the sums over the rounds, whose order alternates.\n\n", r.WrkCommand, strings.Join(r.Paths, "`, `"))
	rows = nil
	for _, t := range r.TokenRuns {
		rows = append(rows, []string{fmt.Sprint(t.Round), t.Variant, benchkit.F(t.RPS, 0), benchkit.F(t.CPUPercent, 0), benchkit.F(t.PerCPUS(), 0),
			t.LatencyP50 + " / " + t.LatencyP99, benchkit.F(t.MachineBusy, 0)})
	}
	b.WriteString(benchkit.Table([]string{"round", "room", "requests/s", "onair CPU % of a core", "requests per CPU second", "latency p50 / p99", "machine busy %"}, rows...))
	return b.String()
}

func servedCell(c abuseCaseResult) string {
	if c.Served() {
		return "served"
	}
	return "**not served**"
}

func publisherCell(c abuseCaseResult) string {
	if c.PublisherLive {
		return "live"
	}
	return "**" + c.PublisherNote + "**"
}

// refusedCell lists refusals by reason, in order.
func refusedCell(m map[string]float64) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s: %.0f", k, m[k]))
	}
	return orNone(strings.Join(out, ", "))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
