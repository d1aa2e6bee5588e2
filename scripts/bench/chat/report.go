package chat

import (
	"fmt"
	"strings"

	"onair/scripts/bench/benchkit"
)

// Targets of the chat benchmarks.
const (
	targetP99MS        = 50.0  // delivery latency p99
	targetPerCPURatio  = 2.0   // onair deliveries per CPU second / socket.io's
	targetClusterP99MS = 250.0 // cross-node delivery latency p99
)

var f, x = benchkit.F, benchkit.X

func lat(l latency) string {
	if l.Samples == 0 {
		return benchkit.NotMeasured
	}
	return fmt.Sprintf("%s / %s / %s / %s / %s", f(l.P50MS, 1), f(l.P90MS, 1), f(l.P99MS, 1), f(l.P999MS, 1), f(l.MaxMS, 1))
}

func chatSection(r *results) string {
	b := r.Section("Chat fan-out: onair and socket.io side by side")
	l := r.Load
	fmt.Fprintf(b, "One room, the same load for both: %d anonymous readers and %d signed-in senders (reading too); the senders post "+
		"in turn, %.0f messages/s for %.0f s (%d messages of %d bytes) after a warm-up at that rate (until every socket receives, then "+
		"%.0f s more). Each text carries its sequence number and send time, so every socket measures its own latency and losses (a "+
		"delivery is lost when the server acknowledged the message and a socket did not get it within the drain time). The load "+
		"generator is a separate process (`bench chat -worker`), so its CPU is never the server's. onair runs with FerretDB, stores "+
		"each message before acknowledging it, rate limit raised (`ONAIR_CHAT_RATE_LIMIT=1000 ONAIR_CHAT_RATE_PER=1s`); socket.io "+
		"(`scripts/bench/socketio/server.js`) broadcasts and acknowledges, storing and checking nothing. Deliveries per CPU second = "+
		"messages received over all sockets / the server's CPU seconds from the first send to the last delivery.\n\n### Targets\n\n",
		r.Readers, r.Senders, l.Rate, l.Duration, int(l.Rate*l.Duration), l.TextBytes, l.Warmup)
	o, okO := r.server("onair")
	s, okS := r.server("socket.io")
	cell := func(ok bool, v float64, dec int) string {
		return map[bool]string{false: benchkit.NotMeasured, true: f(v, dec)}[ok]
	}
	rat := func(a, b float64) string {
		return map[bool]string{false: benchkit.NotMeasured, true: x(a / b)}[okO && okS]
	}
	lost := func(ok bool, l loadResult) string {
		return map[bool]string{false: benchkit.NotMeasured, true: fmt.Sprint(l.Total.Lost + int64(l.Sent-l.Acked)*int64(l.Clients))}[ok]
	}
	ol, sl := o.Load.Total.Latency, s.Load.Total.Latency
	alone, store, peer := o.perCPU("onair"), o.perCPU("onair", "FerretDB"), s.perCPU("socket.io")
	complete := o.Load.Sent > 0 && o.Load.Acked == o.Load.Sent && o.Load.Total.Lost == 0 && o.Load.Total.Dropped == 0 && o.Load.Drained
	b.WriteString(benchkit.Table([]string{"measure", "onair", "socket.io", "onair / socket.io", "target", "verdict"},
		[]string{"delivery latency p99 (ms)", cell(okO, ol.P99MS, 1), cell(okS, sl.P99MS, 1), rat(ol.P99MS, sl.P99MS),
			fmt.Sprintf("< %.0f ms", targetP99MS), benchkit.Verdict(ol.P99MS < targetP99MS, okO && ol.Samples > 0)},
		[]string{"messages lost (deliveries missing)", lost(okO, o.Load), lost(okS, s.Load), "", "0", benchkit.Verdict(complete, okO)},
		[]string{"deliveries per server CPU second: onair process", cell(okO, alone, 0), cell(okS, peer, 0), rat(alone, peer),
			fmt.Sprintf("≥ %.0fx socket.io", targetPerCPURatio), benchkit.Verdict(alone/peer >= targetPerCPURatio, okO && okS)},
		[]string{"deliveries per server CPU second: onair + FerretDB (storage; socket.io stores nothing)", cell(okO, store, 0), cell(okS, peer, 0),
			rat(store, peer), fmt.Sprintf("(≥ %.0fx: not like for like)", targetPerCPURatio), benchkit.Verdict(store/peer >= targetPerCPURatio, okO && okS)}))
	b.WriteString("\nLike for like is the onair process against the socket.io process; the row with FerretDB (on SQLite) is the total cost.\n")
	for _, sr := range r.Servers {
		if t := sr.Load.Total.Latency; t.Samples > 0 && (t.P99MS >= 1000 || sr.WindowS >= l.Duration+1) {
			fmt.Fprintf(b, "\n**%s fell behind the load**: deliveries were up to %s ms late (p99 %s ms) and the last arrived %s s after "+
				"the first post (posting took %.0f s); %s, machine busy %s %%. Its CPU figures are those of a server at its limit.\n",
				sr.Server, f(t.MaxMS, 0), f(t.P99MS, 0), f(sr.WindowS, 1), l.Duration, procs(sr, func(p procUsage) string { return f(p.CPUPercent, 0) + " % of a core" }), f(sr.MachineBusy, 0))
		}
	}
	b.WriteString("\n### Details\n\n")
	header := []string{""}
	for _, sr := range r.Servers {
		header = append(header, sr.Server)
	}
	b.WriteString(benchkit.Table(header, benchkit.Rows(r.Servers,
		benchkit.Row("messages posted / acknowledged / refused / unanswered", func(c serverResult) string {
			l := c.Load
			return fmt.Sprintf("%d / %d / %d / %d", l.Sent, l.Acked, l.Refused, l.Unanswered) + map[bool]string{true: fmt.Sprintf(" (%v)", l.RefusedBy)}[len(l.RefusedBy) > 0]
		}),
		benchkit.Row("deliveries received / expected (lost; duplicates)", func(c serverResult) string { return deliveries(c.Load.Total) }),
		benchkit.Row("sockets that got every message; disconnected", func(c serverResult) string {
			t := c.Load.Total
			return fmt.Sprintf("%d of %d; %d%s", t.Complete, t.Clients, t.Dropped, paren(strings.ReplaceAll(t.FirstError, "|", "/")))
		}),
		benchkit.Row("delivery latency p50 / p90 / p99 / p99.9 / max (ms)", func(c serverResult) string { return lat(c.Load.Total.Latency) }),
		benchkit.Row("ack latency at the sender p50 / p90 / p99 / p99.9 / max (ms)", func(c serverResult) string { return lat(c.Load.AckLatency) }),
		benchkit.Row("latest post behind schedule (ms)", func(c serverResult) string { return f(c.Load.SendSlipMax, 1) }),
		benchkit.Row("window: first send to last delivery (s)", func(c serverResult) string {
			return f(c.WindowS, 2) + map[bool]string{false: " (**drain time ran out**)"}[c.Load.Drained]
		}),
		benchkit.Row("server CPU, % of a core (CPU s)", func(c serverResult) string { return procs(c, cpu) }),
		benchkit.Row("server CPU when idle with every socket connected, % of a core", func(c serverResult) string {
			return procs(c, func(p procUsage) string { return f(p.IdleCPUPercent, 1) })
		}),
		benchkit.Row("server RSS: idle → window mean (max), MB", func(c serverResult) string { return procs(c, rss) }),
		benchkit.Row("load generator CPU, % of a core", func(c serverResult) string { return f(c.WorkerCPUPercent, 0) }),
		benchkit.Row("machine busy, % of all cores", func(c serverResult) string { return f(c.MachineBusy, 0) }))...))
	return b.String()
}

// server is the result of the named server, if it was measured.
func (r *results) server(name string) (serverResult, bool) {
	for _, s := range r.Servers {
		if s.Server == name {
			return s, true
		}
	}
	return serverResult{}, false
}

func cpu(p procUsage) string { return fmt.Sprintf("%s (%s)", f(p.CPUPercent, 1), f(p.CPUSeconds, 2)) }

func procs(c serverResult, fn func(procUsage) string) string {
	var parts []string
	for _, p := range c.Procs {
		parts = append(parts, p.Name+" "+fn(p))
	}
	return strings.Join(parts, "; ")
}

func rss(p procUsage) string {
	return fmt.Sprintf("%s → %s (%s)", f(p.IdleRSSMB, 1), f(p.RSSMeanMB, 1), f(p.RSSMaxMB, 1))
}

func deliveries(g groupResult) string {
	return fmt.Sprintf("%d / %d (%d; %d)", g.Delivered, g.Expected, g.Lost, g.Duplicates)
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func clusterSection(r *clusterResults) string {
	b := r.Section("Chat across nodes: two onair nodes sharing MongoDB")
	l, res := r.Load, r.Result.Load
	groups := map[string]groupResult{}
	for _, g := range res.Groups {
		groups[g.Name] = g
	}
	g, ok := groups[remoteName]
	fmt.Fprintf(b, "Two onair nodes (A and B) on one FerretDB. One sender on node A posts %.0f messages/s for %.0f s (%d messages, %d "+
		"bytes) after a warm-up (until node B's sockets receive, then %.0f s more); %d anonymous sockets read on node B, %d on node A "+
		"for comparison. Node A stores each message and appends it to the capped log `chat_events`, which node B tails; load "+
		"generator and stamps as in `bench chat`.\n\n### Targets\n\n",
		l.Rate, l.Duration, int(l.Rate*l.Duration), l.TextBytes, l.Warmup, g.Clients, groups[localName].Clients)
	measured := ok && len(r.Errors) == 0 && g.Latency.Samples > 0
	b.WriteString(benchkit.Table([]string{"measure", "onair", "target", "verdict"},
		[]string{"cross-node delivery latency p99 (ms)", f(g.Latency.P99MS, 1), fmt.Sprintf("≤ %.0f ms", targetClusterP99MS),
			benchkit.Verdict(g.Latency.P99MS <= targetClusterP99MS, measured)},
		[]string{"cross-node delivery latency max (ms)", f(g.Latency.MaxMS, 1), "—", "—"},
		[]string{"messages lost at node B (deliveries missing)", fmt.Sprint(g.Lost + int64(res.Sent-res.Acked)*int64(g.Clients)), "0",
			benchkit.Verdict(g.Lost == 0 && g.Dropped == 0 && res.Acked == res.Sent && res.Sent > 0, measured)}))
	fmt.Fprintf(b, "\n### Details\n\nMessages posted / acknowledged / refused / unanswered: %d / %d / %d / %d; ack latency p50 %s ms, p99 %s ms; "+
		"window (first send to last delivery) %s s; machine busy %s %%; load generator %s %% of a core.\n\n",
		res.Sent, res.Acked, res.Refused, res.Unanswered, f(res.AckLatency.P50MS, 1), f(res.AckLatency.P99MS, 1),
		f(r.Result.WindowS, 2), f(r.Result.MachineBusy, 0), f(r.Result.WorkerCPUPercent, 0))
	var rows, prows [][]string
	for _, g := range res.Groups {
		rows = append(rows, []string{g.Name, fmt.Sprint(g.Clients), deliveries(g), fmt.Sprintf("%d; %d", g.Complete, g.Dropped), lat(g.Latency)})
	}
	b.WriteString(benchkit.Table([]string{"sockets", "count", "deliveries received / expected (lost; duplicates)",
		"got every message; disconnected", "latency p50 / p90 / p99 / p99.9 / max (ms)"}, rows...) + "\n")
	for _, p := range r.Result.Procs {
		prows = append(prows, []string{p.Name, f(p.IdleCPUPercent, 1), cpu(p), rss(p)})
	}
	b.WriteString(benchkit.Table([]string{"process", "CPU idle, % of a core", "CPU in the window, % of a core (s)", "RSS idle → mean (max), MB"}, prows...))
	return b.String()
}
