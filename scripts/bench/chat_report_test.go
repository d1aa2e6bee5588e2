package main

import (
	"strings"
	"testing"
)

func chatTestServer(name string, p99 float64, cpu map[string]float64) chatServerResult {
	r := chatServerResult{Server: name, WindowS: 30, Load: chatLoadResult{
		Clients: 1010, Sent: 3000, Acked: 3000, Drained: true,
		Groups: []chatGroupResult{{Name: "readers", Clients: 1000}, {Name: "senders", Clients: 10}},
		Total:  chatGroupResult{Clients: 1010, Expected: 3030000, Delivered: 3030000, Complete: 1010, Latency: chatLatency{Samples: 3030000, P50MS: p99 / 3, P99MS: p99, MaxMS: p99 * 2}},
	}}
	for _, n := range []string{nameOnair, nameFerret, nameSocketIO} {
		if s, ok := cpu[n]; ok {
			r.Procs = append(r.Procs, chatProcUsage{Name: n, CPUSeconds: s, CPUPercent: 100 * s / 30})
		}
	}
	return r
}

func TestChatVerdicts(t *testing.T) {
	r := &chatResults{Load: chatLoadParams{Readers: 1000, Senders: 10, Rate: 100, DurationS: 30}, Servers: []chatServerResult{
		chatTestServer(nameOnair, 40, map[string]float64{nameOnair: 10, nameFerret: 10}),
		chatTestServer(nameSocketIO, 3, map[string]float64{nameSocketIO: 30}),
	}}
	v := chatVerdicts(r)
	want := [][2]string{{"13.33x", "met"}, {"", "—"}, {"", "met"}, {"3.00x", "met"}, {"1.50x", "**not met**"}}
	for i, w := range want {
		if i == 1 {
			continue
		}
		if v[i].Ratio != w[0] || v[i].Verdict != w[1] {
			t.Errorf("verdict %d (%s) = %s %s, want %s %s", i, v[i].Measure, v[i].Ratio, v[i].Verdict, w[0], w[1])
		}
	}
	if v[0].Onair != "40.0" || v[3].Onair != "303000" || v[3].Peer != "101000" {
		t.Errorf("figures: %+v", v)
	}

	// A lost delivery, and a missing peer.
	lossy := chatTestServer(nameOnair, 60, map[string]float64{nameOnair: 10})
	lossy.Load.Total.Lost, lossy.Load.Acked = 1, 2999
	r = &chatResults{Servers: []chatServerResult{lossy}}
	v = chatVerdicts(r)
	if v[0].Verdict != "**not met**" || v[2].Onair != "1011" || v[2].Verdict != "**not met**" || v[3].Verdict != "not measured" || v[3].Peer != notMeasured {
		t.Errorf("lossy run verdicts: %+v", v)
	}
	if strings.Contains(chatSection(r), "NaN") {
		t.Error("the section shows NaN")
	}
}

func TestChatSection(t *testing.T) {
	slow := chatTestServer(nameSocketIO, 2500, map[string]float64{nameSocketIO: 25})
	slow.WindowS = 33
	r := &chatResults{Command: "go run ./scripts/bench chat -onair bin/onair", Load: chatLoadParams{Readers: 1000, Senders: 10, Rate: 100, DurationS: 30, TextBytes: 64},
		Servers: []chatServerResult{chatTestServer(nameOnair, 40, map[string]float64{nameOnair: 10, nameFerret: 10}), slow}}
	r.Verdicts = chatVerdicts(r)
	s := chatSection(r)
	for _, want := range []string{
		"`go run ./scripts/bench chat -onair bin/onair`",
		"| deliveries per server CPU second: onair process | 303000 | 121200 | 2.50x | ≥ 2x socket.io | met |",
		"| sockets (readers + senders) | 1010 (1000 + 10) | 1010 (1000 + 10) |",
		"| server CPU per delivery (µs) | onair 3.30; FerretDB 3.30 | socket.io 8.25 |",
		"**socket.io fell behind the load**",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "**onair fell behind") {
		t.Error("onair reported behind")
	}
}

func TestClusterChatVerdicts(t *testing.T) {
	r := &clusterChatResults{Result: chatServerResult{Load: chatLoadResult{Sent: 600, Acked: 600, Groups: []chatGroupResult{
		{Name: clusterRemoteName, Clients: 100, Latency: chatLatency{Samples: 60000, P99MS: 120, MaxMS: 300}},
	}}}}
	v := clusterChatVerdicts(r)
	if v[0].Onair != "120.0" || v[0].Verdict != "met" || v[1].Onair != "300.0" || v[2].Onair != "0" || v[2].Verdict != "met" {
		t.Errorf("verdicts: %+v", v)
	}
	r.Result.Load.Groups[0].Lost = 3
	r.Result.Load.Groups[0].Latency.P99MS = 260
	v = clusterChatVerdicts(r)
	if v[0].Verdict != "**not met**" || v[2].Onair != "3" || v[2].Verdict != "**not met**" {
		t.Errorf("verdicts: %+v", v)
	}
	if s := clusterChatSection(r); !strings.Contains(s, "| node B (other node) | 100 |") {
		t.Errorf("section:\n%s", s)
	}
}
