package chat

import (
	"fmt"
	"onair/scripts/bench/oldkit"
	"slices"
)

// Targets of the chat benchmarks (issue 3 and issue 6).
const (
	targetChatP99MS        = 50.0  // delivery latency p99, absolute
	targetChatPerCPURatio  = 2.0   // onair deliveries per CPU second / socket.io's
	targetClusterChatP99MS = 250.0 // cross-node delivery latency
)

func findChatServer(rs []chatServerResult, name string) (chatServerResult, bool) {
	i := slices.IndexFunc(rs, func(r chatServerResult) bool { return r.Server == name })
	if i < 0 {
		return chatServerResult{}, false
	}
	return rs[i], true
}

// cpuSeconds sums the window's CPU seconds of the named processes (all when none named).
func (r chatServerResult) cpuSeconds(names ...string) float64 {
	var s float64
	for _, p := range r.Procs {
		if len(names) == 0 || slices.Contains(names, p.Name) {
			s += p.CPUSeconds
		}
	}
	return s
}

// perCPU is deliveries per CPU second of the named processes.
func (r chatServerResult) perCPU(names ...string) float64 {
	return oldkit.Ratio(float64(r.Load.Total.Delivered), r.cpuSeconds(names...))
}

// chatLost is what did not arrive: deliveries of acknowledged messages that some socket
// lacks, plus every receiver's copy of each message that was posted but not accepted.
func chatLost(l chatLoadResult) int64 {
	notAccepted := int64(l.Sent-l.Acked) * int64(l.Clients)
	return l.Total.Lost + notAccepted
}

// chatComplete reports whether every socket got every message, with nothing refused.
func chatComplete(l chatLoadResult) bool {
	return l.Sent > 0 && l.Acked == l.Sent && l.Total.Lost == 0 && l.Total.Dropped == 0 && l.Drained
}

// chatVerdicts is the targets table of bench chat.
func chatVerdicts(r *chatResults) []chatVerdict {
	o, okO := findChatServer(r.Servers, oldkit.NameOnair)
	s, okS := findChatServer(r.Servers, nameSocketIO)
	both := okO && okS
	cell := func(ok bool, v float64, dec int) string {
		if !ok {
			return oldkit.NotMeasured
		}
		return oldkit.Fnum(v, dec)
	}
	rat := func(a, b float64) string {
		if !both {
			return oldkit.NotMeasured
		}
		return oldkit.Fratio(oldkit.Ratio(a, b))
	}
	lostCell := func(ok bool, r chatServerResult) string {
		if !ok {
			return oldkit.NotMeasured
		}
		return fmt.Sprintf("%d", chatLost(r.Load))
	}
	latO := okO && o.Load.Total.Latency.Samples > 0
	oP99, sP99 := o.Load.Total.Latency.P99MS, s.Load.Total.Latency.P99MS
	oP50, sP50 := o.Load.Total.Latency.P50MS, s.Load.Total.Latency.P50MS
	alone, store, peer := o.perCPU(oldkit.NameOnair), o.perCPU(oldkit.NameOnair, oldkit.NameFerret), s.perCPU(nameSocketIO)
	return []chatVerdict{
		{Measure: "delivery latency p99 (ms)", Onair: cell(okO, oP99, 1), Peer: cell(okS, sP99, 1), Ratio: rat(oP99, sP99),
			Target: fmt.Sprintf("< %.0f ms", targetChatP99MS), Verdict: oldkit.Verdict(oP99 < targetChatP99MS, latO)},
		{Measure: "delivery latency p50 (ms)", Onair: cell(okO, oP50, 1), Peer: cell(okS, sP50, 1), Ratio: rat(oP50, sP50),
			Target: "—", Verdict: "—"},
		{Measure: "messages lost (deliveries missing)", Onair: lostCell(okO, o), Peer: lostCell(okS, s), Ratio: "",
			Target: "0", Verdict: oldkit.Verdict(chatComplete(o.Load), okO)},
		{Measure: "deliveries per server CPU second: onair process", Onair: cell(okO, alone, 0), Peer: cell(okS, peer, 0),
			Ratio: rat(alone, peer), Target: fmt.Sprintf("≥ %.0fx socket.io", targetChatPerCPURatio),
			Verdict: oldkit.Verdict(oldkit.Ratio(alone, peer) >= targetChatPerCPURatio, both)},
		{Measure: "deliveries per server CPU second: onair + FerretDB (storage; socket.io stores nothing)", Onair: cell(okO, store, 0),
			Peer: cell(okS, peer, 0), Ratio: rat(store, peer), Target: fmt.Sprintf("(≥ %.0fx: not like for like)", targetChatPerCPURatio),
			Verdict: oldkit.Verdict(oldkit.Ratio(store, peer) >= targetChatPerCPURatio, both)},
	}
}

// clusterChatVerdicts is the targets table of bench cluster-chat: latency and loss at
// the receivers of node B.
func clusterChatVerdicts(r *clusterChatResults) []chatVerdict {
	l := r.Result.Load
	g, ok := clusterRemoteGroup(l)
	measured := ok && len(r.Errors) == 0
	measured = measured && g.Latency.Samples > 0
	p99, maxCell := oldkit.NotMeasured, oldkit.NotMeasured
	if ok {
		p99, maxCell = oldkit.Fnum(g.Latency.P99MS, 1), oldkit.Fnum(g.Latency.MaxMS, 1)
	}
	return []chatVerdict{
		{Measure: "cross-node delivery latency p99 (ms)", Onair: p99, Target: fmt.Sprintf("≤ %.0f ms", targetClusterChatP99MS),
			Verdict: oldkit.Verdict(g.Latency.P99MS <= targetClusterChatP99MS, measured)},
		{Measure: "cross-node delivery latency max (ms)", Onair: maxCell, Target: "—", Verdict: "—"},
		{Measure: "messages lost at node B (deliveries missing)", Onair: fmt.Sprintf("%d", g.Lost+int64(l.Sent-l.Acked)*int64(g.Clients)),
			Target: "0", Verdict: oldkit.Verdict(g.Lost == 0 && g.Dropped == 0 && l.Acked == l.Sent && l.Sent > 0, measured)},
	}
}

// clusterRemoteGroup is the group of receivers on node B.
func clusterRemoteGroup(l chatLoadResult) (chatGroupResult, bool) {
	i := slices.IndexFunc(l.Groups, func(g chatGroupResult) bool { return g.Name == clusterRemoteName })
	if i < 0 {
		return chatGroupResult{}, false
	}
	return l.Groups[i], true
}
