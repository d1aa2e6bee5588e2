package cluster

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"onair/scripts/bench/benchkit"
	"slices"
	"strings"
	"time"
)

// Targets of the cluster-churn benchmark.
const (
	// churnSlackS is how much of what a publisher session sent its recording may lack:
	// what was in flight (socket buffers) when its node cut it off.
	churnSlackS = 0.5
	// churnStallS bounds the wait for a new part of players that the restarting node's
	// streams and connections do not concern: five 200 ms parts.
	churnStallS = 1.0
	// churnCDNRatio bounds the origin's requests/s at the most players against the fewest.
	churnCDNRatio = 1.5
)

// churnResults is everything `bench cluster-churn` measured; it is written as JSON to
// .artifacts/bench/cluster-churn.json and summarised in BENCHMARKS.md. Times in seconds
// (…_s) count from the start of the churn phase.
type churnResults struct {
	benchkit.Head
	Input       benchkit.Input `json:"input"`
	Publishers  int            `json:"publishers"`
	Players     int            `json:"players"`
	SteadyFromS float64        `json:"steady_from_s"`
	EndS        float64        `json:"end_s"`
	MachineBusy float64        `json:"machine_busy_pct"`
	FerretCPU   float64        `json:"ferretdb_cpu_pct_of_core"`
	BenchCPU    float64        `json:"players_cpu_pct_of_core"` // this process: the players
	// From the nodes' logs: heartbeats MongoDB did not take in time, and live broadcasts
	// of other nodes ended because those nodes' heartbeats had gone stale.
	HeartbeatsFailed int            `json:"heartbeats_not_written"`
	EndedAsSilent    int            `json:"broadcasts_ended_node_silent"`
	Rejoins          int            `json:"player_rejoins"`
	Restarts         []churnRestart `json:"restarts"`
	Rooms            []churnRoom    `json:"rooms"`
	ViewersBefore    viewerSummary  `json:"viewers_before_restarts"`
	ViewersAfter     viewerSummary  `json:"viewers_after_restarts"`
	BaselineStallS   float64        `json:"baseline_stall_s"`
	CDNWarmupS       float64        `json:"cdn_warmup_s"`
	CDNWindowS       float64        `json:"cdn_window_s"`
	CDN              []churnCDNRun  `json:"cdn"`
}

// churnRestart is one node's restart, and the longest wait for a new part from its
// SIGTERM to the next restart (or the end), by group of players.
type churnRestart struct {
	Node     string  `json:"node"`
	AtS      float64 `json:"sigterm_at_s"`
	StopS    float64 `json:"exited_after_s"`
	StartS   float64 `json:"start_to_ready_s"`
	Exit     string  `json:"exit,omitempty"` // unless status 0
	OtherS   float64 `json:"stall_other_s"`  // streams on other nodes, through other nodes
	OtherWho string  `json:"stall_other_who"`
	MovedS   float64 `json:"stall_moved_s"`   // streams whose publisher was on the node
	ThroughS float64 `json:"stall_through_s"` // players watching through the node
}

// churnRoom is one room: its publisher's sessions and its broadcasts' recordings.
type churnRoom struct {
	Room       string         `json:"room"`
	Sessions   []churnSession `json:"sessions"`
	Broadcasts int            `json:"broadcasts"`
	Ready      int            `json:"recordings_ready"`
	Recovered  int            `json:"recordings_recovered"`
	RecordedS  float64        `json:"recorded_s"`
}

// churnSession is one run of a room's ffmpeg, from its start to its exit.
type churnSession struct {
	Node   string  `json:"node"`
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	Exit   string  `json:"exit,omitempty"` // when it ended by itself: cut off, or refused
	// SentS is the media ffmpeg sent (its progress report), LiveS when the session's
	// broadcast started (0 without a broadcast: refused).
	SentS float64 `json:"sent_s"`
	LiveS float64 `json:"broadcast_start_s,omitempty"`
}

type churnCDNRun struct {
	Players         int                `json:"players"`
	Requests        float64            `json:"origin_requests"`
	ByKind          map[string]float64 `json:"origin_requests_by_kind"`
	Seconds         float64            `json:"seconds"`
	PartsPerPlayerS float64            `json:"parts_per_player_s"`
	Rejoins         int                `json:"rejoins"`
	MachineBusy     float64            `json:"machine_busy_pct"`
}

func (r churnCDNRun) RPS() float64 { return benchkit.Ratio(r.Requests, r.Seconds) }

// nodeAt is the node room's publisher sent to at t, "" between sessions.
func (r churnRoom) nodeAt(t float64) string {
	for _, s := range r.Sessions {
		if s.StartS <= t && t < s.EndS {
			return s.Node
		}
	}
	return ""
}

// churnStalls finds each restart's longest stalls by group, and returns the longest of
// any player in the steady time before the first restart.
func churnStalls(r *churnResults, viewers []*benchkit.Viewer, t0 time.Time) (baseline float64) {
	arrivals := make([][]float64, len(viewers))
	for i, v := range viewers {
		arrivals[i] = v.Arrivals(t0)
	}
	for i := range r.Restarts {
		x, to := &r.Restarts[i], r.EndS
		if i+1 < len(r.Restarts) {
			to = r.Restarts[i+1].AtS
		}
		for j, w := range viewers {
			g, at := benchkit.LongestGap(arrivals[j], x.AtS, to)
			switch on := r.Rooms[w.Room].nodeAt(x.AtS); {
			case nodeName(w.Node) == x.Node:
				x.ThroughS = max(x.ThroughS, g)
			case on == x.Node:
				x.MovedS = max(x.MovedS, g)
			case g > x.OtherS:
				x.OtherS, x.OtherWho = g, fmt.Sprintf("player %d: %s on %s, through %s, from %.1f s", j, r.Rooms[w.Room].Room, on, nodeName(w.Node), at)
				if notes := w.ErrsIn(t0, at, at+g); len(notes) > 0 {
					x.OtherWho += "; it joined again after: " + strings.Join(notes, "; ")
				}
			}
		}
	}
	for _, a := range arrivals {
		if len(r.Restarts) > 0 {
			g, _ := benchkit.LongestGap(a, r.SteadyFromS, r.Restarts[0].AtS)
			baseline = max(baseline, g)
		}
	}
	return baseline
}

// media is what the room's publishers sent (by ffmpeg's count), in how many sessions, and
// the time from each one's exit to the next broadcast's start (reconnects, the new
// ffmpeg's start-up included).
func (r churnRoom) media() (sent, gaps float64, sessions int) {
	end := -1.0
	for _, s := range r.Sessions {
		if s.SentS > 0 {
			sent, sessions = sent+s.SentS, sessions+1
		}
		if s.LiveS > 0 {
			if end >= 0 {
				gaps += s.LiveS - end
			}
			end = s.EndS
		}
	}
	return sent, gaps, sessions
}

// missingS is the media per session that the recordings lack.
func (r churnRoom) missingS() float64 {
	p, _, n := r.media()
	return benchkit.Ratio(max(0, p-r.RecordedS), float64(n))
}

// complete: every broadcast has a replay, and together they hold what was published.
func (r churnRoom) complete() bool {
	return r.Broadcasts > 0 && r.Ready == r.Broadcasts && r.missingS() <= churnSlackS
}

// viewerSummary compares the rooms' viewer counts with their players.
type viewerSummary struct {
	Samples int    `json:"samples"` // a room's count, read from one node's API
	Exact   int    `json:"exact"`
	MaxAbs  int    `json:"max_abs_error"`
	Worst   string `json:"worst,omitempty"`
	Unread  int    `json:"unread"` // rooms whose count the API did not give
	// The sum over the rooms as one node's API told it at one moment, and the players'.
	TotalMin int `json:"rooms_sum_min"`
	TotalMax int `json:"rooms_sum_max"`
	Want     int `json:"players"`
}

// add notes every room's count as node's API told it at one moment (at, in seconds);
// a count below 0 is one it did not give.
func (v *viewerSummary) add(node string, at float64, reported, players []int) {
	total, want, unread := 0, 0, 0
	for i := range reported {
		if reported[i] < 0 {
			unread++
			continue
		}
		d := reported[i] - players[i]
		if max(d, -d) > v.MaxAbs {
			v.MaxAbs, v.Worst = max(d, -d), fmt.Sprintf("%s through %s at %.0f s: %d for %d players", churnRoomName(i), node, at, reported[i], players[i])
		}
		v.Samples, v.Exact = v.Samples+1, v.Exact+boolInt(d == 0)
		total, want = total+reported[i], want+players[i]
	}
	if v.Unread += unread; unread > 0 {
		return // the sum would not be the rooms'
	}
	if v.Want == 0 || total < v.TotalMin {
		v.TotalMin = total
	}
	v.TotalMax, v.Want = max(v.TotalMax, total), want
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// churnSection renders the BENCHMARKS.md section of a cluster-churn run (without its
// markers).
func churnSection(r *churnResults) string {
	b := r.Section("Cluster churn: rolling restarts under load, and a CDN in front")
	fmt.Fprintf(b, "Three onair nodes (A, B, C: fixed ids, HTTP addresses advertised to each other, data directories kept across restarts) "+
		"share one FerretDB and one MinIO and record every broadcast. %[1]d rooms, created through the API, are each published by a looping "+
		"`ffmpeg -re -stream_loop -1 -i input.flv -c copy` of `%[2]s` (%.0[3]f kbit/s), room r first to node r mod 3. %[4]d LL-HLS players "+
		"(the live benchmark's probe without frame parsing, each from a loopback address of its own) watch room i mod %[1]d through node "+
		"(room + i div %[1]d) mod 3: every room has players on every node, two thirds of them through a node that proxies from the origin; "+
		"a player whose request fails joins again 250 ms later on the same node. After the warm-up each node is restarted in turn: SIGTERM, "+
		"wait for its exit, start again with the same id and data directory, wait for `/readyz`. A publisher cut off by the shutdown is "+
		"started again at once on the node up with the fewest publishers, as OBS reconnecting through a least-connections load balancer; "+
		"each publisher session is a new broadcast, so a room's recordings are all its broadcasts'.\n\n",
		r.Publishers, r.Input.File, r.Input.BitrateKbps, r.Players)

	complete, broadcasts, recovered, sessions, worst := 0, 0, 0, 0, churnRoom{}
	for _, x := range r.Rooms {
		complete += boolInt(x.complete())
		broadcasts, recovered, sessions = broadcasts+x.Broadcasts, recovered+x.Recovered, sessions+len(x.Sessions)
		if worst.Room == "" || x.missingS() > worst.missingS() {
			worst = x
		}
	}
	_, _, worstSessions := worst.media()
	measured := slices.ContainsFunc(r.Rooms, func(x churnRoom) bool { return x.Broadcasts > 0 })
	rows := [][]string{
		{"recordings complete: every broadcast has a replay, and a room's replays hold what its publisher sent",
			fmt.Sprintf("%d/%d rooms (%d publisher sessions, %d broadcasts, %d recovered after a crash)", complete, len(r.Rooms), sessions, broadcasts, recovered),
			fmt.Sprintf("%d/%d", len(r.Rooms), len(r.Rooms)), benchkit.Verdict(complete == len(r.Rooms), measured)},
		{"media missing (sent − recorded) per publisher session, worst room",
			fmt.Sprintf("%s s (%s, %d sessions)", benchkit.F(worst.missingS(), 2), worst.Room, worstSessions),
			fmt.Sprintf("≤ %.1f s", churnSlackS), benchkit.Verdict(worst.missingS() <= churnSlackS, measured)},
	}
	for _, x := range []struct {
		phase string
		v     viewerSummary
	}{{"before", r.ViewersBefore}, {"after", r.ViewersAfter}} {
		v, worst := x.v, ""
		if v.MaxAbs > 0 {
			worst = "; worst: " + v.Worst
		}
		rows = append(rows, []string{"viewer count error " + x.phase + " the restarts: room's `viewers` − its players, worst",
			fmt.Sprintf("%d (%d of %d samples exact, %d unread; rooms' sum %d–%d for %d players%s)", v.MaxAbs, v.Exact, v.Samples, v.Unread,
				v.TotalMin, v.TotalMax, v.Want, worst),
			"0", benchkit.Verdict(v.MaxAbs == 0, v.Samples > 0)})
	}
	other := churnRestart{}
	for _, x := range r.Restarts {
		if x.OtherS >= other.OtherS {
			other = x
		}
	}
	rows = append(rows, []string{"longest stall while a node restarts, players of streams on other nodes through other nodes (time without a new part)",
		fmt.Sprintf("%s s (%s); before the restarts, any player: %s s", benchkit.F(other.OtherS, 2), other.OtherWho, benchkit.F(r.BaselineStallS, 2)),
		fmt.Sprintf("≤ %.0f s", churnStallS), benchkit.Verdict(other.OtherS <= churnStallS, len(r.Restarts) > 0)})
	if n := len(r.CDN); n > 0 {
		q := benchkit.Ratio(r.CDN[n-1].RPS(), r.CDN[0].RPS())
		rows = append(rows, []string{fmt.Sprintf("CDN: origin requests/s at %d players / at %d", r.CDN[n-1].Players, r.CDN[0].Players),
			fmt.Sprintf("%s (%s → %s requests/s)", benchkit.X(q), benchkit.F(r.CDN[0].RPS(), 1), benchkit.F(r.CDN[n-1].RPS(), 1)),
			fmt.Sprintf("≤ %.1fx", churnCDNRatio), benchkit.Verdict(q <= churnCDNRatio, !math.IsNaN(q))})
	}
	b.WriteString("### Targets\n\n" + benchkit.Table([]string{"measure", "figure", "target", "verdict"}, rows...))

	fmt.Fprintf(b, "\n### Restarts\n\nPlayers joined at 0 s; viewers were counted from %.0f s on and again before the end, at %.0f s. "+
		"Longest stalls (time without a new part) from the node's SIGTERM to the next restart (or the end), by player: of streams on other "+
		"nodes through other nodes; of the streams that were on it (their publisher's next session is a new run, which players join again); "+
		"through it (they wait for it to come back). Players rejoined %d times in all. Machine busy: %s %%; the players (this process) used %s %% of a core, FerretDB %s %%; "+
		"the nodes logged %d heartbeats not written in time and %d broadcasts of live nodes ended as \"node stopped reporting\".\n\n",
		r.SteadyFromS, r.EndS, r.Rejoins, benchkit.F(r.MachineBusy, 0), benchkit.F(r.BenchCPU, 0), benchkit.F(r.FerretCPU, 0), r.HeartbeatsFailed, r.EndedAsSilent)
	var rr [][]string
	for _, x := range r.Restarts {
		rr = append(rr, []string{x.Node, benchkit.F(x.AtS, 1), benchkit.F(x.StopS, 1), cmp.Or(x.Exit, "status 0"), benchkit.F(x.StartS, 1),
			benchkit.F(x.OtherS, 2), benchkit.F(x.MovedS, 2), benchkit.F(x.ThroughS, 2)})
	}
	b.WriteString(benchkit.Table([]string{"node", "SIGTERM at (s)", "exited after (s)", "exit", "start → ready (s)",
		"stall (s): other streams, other nodes", "streams that were on it", "through it"}, rr...))

	b.WriteString("\n### Rooms\n\n")
	var rooms [][]string
	for _, x := range r.Rooms {
		var nodes []string
		for _, s := range x.Sessions {
			nodes = append(nodes, s.Node)
		}
		p, gaps, _ := x.media()
		rooms = append(rooms, []string{x.Room, strings.Join(nodes, " → "), benchkit.F(gaps, 1), benchkit.F(p, 1), benchkit.F(x.RecordedS, 1),
			benchkit.F(x.missingS(), 2), fmt.Sprintf("%d/%d (%d)", x.Ready, x.Broadcasts, x.Recovered)})
	}
	b.WriteString(benchkit.Table([]string{"room", "publisher sessions on", "reconnect gaps (s)", "sent (s)", "recorded (s)",
		"missing per session (s)", "replays / broadcasts (recovered)"}, rooms...))
	b.WriteString("\n*Sent* is the media the room's ffmpeg runs wrote (their `-progress` report, `out_time`); *recorded* the sum of " +
		"its broadcasts' recording durations (the API's `recording.duration_ms`). A reconnect gap runs from an ffmpeg's exit to " +
		"the next broadcast's start (the API's `started`), the new ffmpeg's start-up included.\n")

	if len(r.CDN) > 0 {
		fmt.Fprintf(b, "\n### CDN stand-in\n\nOne more node (same FerretDB and MinIO, recording off) with one looping ffmpeg publisher, behind "+
			"Debian's nginx running `configs/cdn/nginx.conf` (rendered by `configs/cdn`, as the end-to-end tests do). For each count, "+
			"that many players (as above, all through nginx, video rendition only) play for %.0f s; then the origin's "+
			"`onair_hls_requests_total` (its metrics listener) is read at the start and the end of a %.0f s window. *Parts per player "+
			"per second* (5 at 200 ms parts) shows whether the players kept up.\n\n", r.CDNWarmupS, r.CDNWindowS)
		var cr [][]string
		for _, x := range r.CDN {
			var kinds []string
			for _, k := range slices.Sorted(maps.Keys(x.ByKind)) {
				if x.ByKind[k] != 0 {
					kinds = append(kinds, fmt.Sprintf("%s %.0f", strings.TrimSuffix(strings.TrimPrefix(k, `kind="`), `"`), x.ByKind[k]))
				}
			}
			cr = append(cr, []string{fmt.Sprint(x.Players), benchkit.F(x.RPS(), 1), benchkit.X(benchkit.Ratio(x.RPS(), r.CDN[0].RPS())), strings.Join(kinds, ", "),
				benchkit.F(x.PartsPerPlayerS, 2), fmt.Sprint(x.Rejoins), benchkit.F(x.MachineBusy, 0)})
		}
		b.WriteString(benchkit.Table([]string{"players", "origin requests/s", "vs the first", "origin requests by kind", "parts per player per s",
			"rejoins", "machine busy %"}, cr...))
	}
	return b.String()
}
