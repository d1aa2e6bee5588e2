package chat

import (
	"fmt"
	"onair/scripts/bench/oldkit"
	"slices"
	"strings"
)

// chatSection renders the bench:chat section of BENCHMARKS.md (without its markers).
func chatSection(r *chatResults) string {
	var b strings.Builder
	m, l := r.Machine, r.Load
	receivers := l.Readers + l.Senders
	b.WriteString("## Chat fan-out: onair and socket.io side by side\n\n")
	fmt.Fprintf(&b, "Produced by `%s` on %s (finished %s).\n\n", r.Command, r.Started, r.Finished)
	fmt.Fprintf(&b, "Machine: %d cores (`nproc`), %s, Linux %s (`uname -r`), %s, Node %s, socket.io %s. "+
		"Load average (1, 5, 15 min) %s at the start, %s at the end; *machine busy* below is the whole machine's "+
		"CPU use during the window, in %% of all cores: the server's, FerretDB's and the load generator's included.\n\n",
		m.CPUs, m.CPUModel, m.Kernel, m.Go, orNA(r.Node), orNA(r.SocketIO), m.LoadStart, m.LoadEnd)
	b.WriteString(r.Onair.Line())
	fmt.Fprintf(&b, "Load, the same for both servers: one room; %d anonymous reading sockets and %d signed-in "+
		"sending sockets (extra, reading as well): %d receivers, every one measured. The senders post in turn, "+
		"%.0f messages/s in all for %.0f s (%d messages, %d bytes of text each), after a warm-up at the same rate "+
		"(until every socket receives, then %.0f s more). Each text carries a sequence number and its send time; "+
		"each socket notes the arrival of every message (one process, one clock) and which ones it got. A delivery "+
		"is lost when the server acknowledged the message and a socket did not get it within the drain time.\n\n",
		l.Readers, l.Senders, receivers, l.Rate, l.DurationS, int(l.Rate*l.DurationS), l.TextBytes, l.WarmupS)
	b.WriteString("The load generator is this program run as a separate process (`bench chat -worker`, Go, " +
		"gorilla/websocket), so its CPU is never the server's. It speaks onair's JSON frames (`chat/doc.go`) on " +
		"`/api/v1/rooms/{slug}/chat`, and Engine.IO v4 / Socket.IO v5 over a plain websocket to socket.io " +
		"(`transport=websocket`, no long-polling; the same framing the socket.io client sends): the clients' " +
		"cost is the same code for both servers.\n\n")
	b.WriteString("- **onair** with FerretDB (`.tools/bin/ferretdb`): every message is stored before it is " +
		"acknowledged and broadcast. Senders sign up through the API; the room is created by the first. The " +
		"per-user rate limit is raised with `ONAIR_CHAT_RATE_LIMIT=1000 ONAIR_CHAT_RATE_PER=1s`: the default " +
		"(5 per 10 s) would refuse all but the first few posts of each sender.\n")
	fmt.Fprintf(&b, "- **socket.io** %s on Node %s (`scripts/bench/socketio/server.js`, one process): join a room; "+
		"each `msg` is broadcast with `io.to(room).emit` (the sender included, as onair does) and acknowledged. "+
		"Nothing is stored, checked or rate limited.\n\n", orNA(r.SocketIO), orNA(r.Node))
	b.WriteString("Deliveries per CPU second = messages received, summed over the sockets / the server's CPU " +
		"seconds (utime + stime from `/proc/<pid>/stat`) over the window, from the first send to the last delivery.\n\n")
	oldkit.RunErrors(&b, r.Errors)

	b.WriteString("### Targets\n\n")
	var rows [][]string
	for _, v := range r.Verdicts {
		rows = append(rows, []string{v.Measure, v.Onair, v.Peer, v.Ratio, v.Target, v.Verdict})
	}
	b.WriteString(oldkit.Table([]string{"measure", oldkit.NameOnair, nameSocketIO, "onair / socket.io", "target", "verdict"}, rows))
	b.WriteString("\nThe like-for-like CPU comparison is the onair process against the socket.io process: " +
		"one server against one, and onair's figure still includes its own MongoDB work (inserting each message, " +
		"writing and tailing the event log). socket.io stores nothing, so adding FerretDB compares chat with " +
		"durable storage against chat without; FerretDB on SQLite is also far costlier per operation than " +
		"MongoDB, which production runs on other machines. That row is the total cost on this machine, not the " +
		"target's measure.\n")

	for _, srv := range r.Servers {
		if note := chatBehindNote(srv, l.DurationS); note != "" {
			b.WriteString("\n" + note + "\n")
		}
	}
	b.WriteString("\n### Details\n\n")
	b.WriteString(chatDetails(r.Servers, []string{oldkit.NameOnair, nameSocketIO}))
	return b.String()
}

// chatDetails is the details table of the servers named.
func chatDetails(servers []chatServerResult, names []string) string {
	var cols []chatServerResult
	var header = []string{""}
	for _, n := range names {
		if s, ok := findChatServer(servers, n); ok {
			cols = append(cols, s)
			header = append(header, n)
		}
	}
	if len(cols) == 0 {
		return "Nothing was measured.\n"
	}
	row := func(label string, f func(chatServerResult) string) []string {
		out := []string{label}
		for _, c := range cols {
			out = append(out, f(c))
		}
		return out
	}
	lat := func(x chatLatency) string {
		if x.Samples == 0 {
			return oldkit.NotMeasured
		}
		return fmt.Sprintf("%s / %s / %s / %s / %s", oldkit.Fnum(x.P50MS, 1), oldkit.Fnum(x.P90MS, 1), oldkit.Fnum(x.P99MS, 1), oldkit.Fnum(x.P999MS, 1), oldkit.Fnum(x.MaxMS, 1))
	}
	procs := func(f func(chatServerResult, chatProcUsage) string) func(chatServerResult) string {
		return func(c chatServerResult) string {
			var parts []string
			for _, p := range c.Procs {
				parts = append(parts, p.Name+" "+f(c, p))
			}
			return strings.Join(parts, "; ")
		}
	}
	rows := [][]string{
		row("sockets (readers + senders)", func(c chatServerResult) string {
			senders := groupClients(c.Load, "senders")
			return fmt.Sprintf("%d (%d + %d)", c.Load.Clients, c.Load.Clients-senders, senders)
		}),
		row("messages posted / acknowledged / refused / unanswered", func(c chatServerResult) string {
			l := c.Load
			s := fmt.Sprintf("%d / %d / %d / %d", l.Sent, l.Acked, l.Refused, l.Unanswered)
			if len(l.RefusedBy) > 0 {
				s += fmt.Sprintf(" (%v)", l.RefusedBy)
			}
			return s
		}),
		row("deliveries received / expected (lost; duplicates)", func(c chatServerResult) string {
			t := c.Load.Total
			return fmt.Sprintf("%d / %d (%d; %d)", t.Delivered, t.Expected, t.Lost, t.Duplicates)
		}),
		row("sockets that got every message; disconnected", func(c chatServerResult) string {
			t := c.Load.Total
			s := fmt.Sprintf("%d of %d; %d", t.Complete, t.Clients, t.Dropped)
			if t.FirstError != "" {
				s += " (" + strings.ReplaceAll(t.FirstError, "|", "/") + ")"
			}
			return s
		}),
		row("delivery latency p50 / p90 / p99 / p99.9 / max (ms)", func(c chatServerResult) string { return lat(c.Load.Total.Latency) }),
		row("ack latency at the sender p50 / p90 / p99 / p99.9 / max (ms)", func(c chatServerResult) string { return lat(c.Load.AckLatency) }),
		row("latest post behind schedule (ms)", func(c chatServerResult) string { return oldkit.Fnum(c.Load.SendSlipMax, 1) }),
		row("window: first send to last delivery (s)", func(c chatServerResult) string {
			s := oldkit.Fnum(c.WindowS, 2)
			if !c.Load.Drained {
				s += " (**drain time ran out**)"
			}
			return s
		}),
		row("server CPU, % of a core (CPU s)", procs(func(_ chatServerResult, p chatProcUsage) string {
			return fmt.Sprintf("%s (%s)", oldkit.Fnum(p.CPUPercent, 1), oldkit.Fnum(p.CPUSeconds, 2))
		})),
		row("server CPU per delivery (µs)", procs(func(c chatServerResult, p chatProcUsage) string {
			return oldkit.Fnum(1e6*oldkit.Ratio(p.CPUSeconds, float64(c.Load.Total.Delivered)), 2)
		})),
		row("server CPU when idle with every socket connected, % of a core", procs(func(_ chatServerResult, p chatProcUsage) string {
			return oldkit.Fnum(p.IdleCPUPercent, 1)
		})),
		row("server RSS: idle → window mean (max), MB", procs(func(_ chatServerResult, p chatProcUsage) string {
			return fmt.Sprintf("%s → %s (%s)", oldkit.Fnum(p.IdleRSSMB, 1), oldkit.Fnum(p.RSSMeanMB, 1), oldkit.Fnum(p.RSSMaxMB, 1))
		})),
		row("load generator CPU, % of a core", func(c chatServerResult) string { return oldkit.Fnum(c.WorkerCPUPercent, 0) }),
		row("machine busy, % of all cores", func(c chatServerResult) string { return oldkit.Fnum(c.MachineBusy, 0) }),
	}
	return oldkit.Table(header, rows)
}

// groupClients is the number of clients in the named group.
func groupClients(l chatLoadResult, name string) int {
	i := slices.IndexFunc(l.Groups, func(g chatGroupResult) bool { return g.Name == name })
	if i < 0 {
		return 0
	}
	return l.Groups[i].Clients
}

func orNA(s string) string {
	if s == "" {
		return oldkit.NotMeasured
	}
	return s
}

// chatBehindNote says when a server could not keep up with the load: deliveries seconds
// late, or still arriving well after the last post. Its CPU figures are then those of an
// overloaded server.
func chatBehindNote(r chatServerResult, durationS float64) string {
	lat := r.Load.Total.Latency
	if lat.Samples == 0 || (lat.P99MS < 1000 && r.WindowS < durationS+1) {
		return ""
	}
	var cpu []string
	for _, p := range r.Procs {
		cpu = append(cpu, fmt.Sprintf("%s %s %% of a core", p.Name, oldkit.Fnum(p.CPUPercent, 0)))
	}
	return fmt.Sprintf("**%s fell behind the load**: deliveries were up to %s ms late (p99 %s ms) and the last "+
		"arrived %s s after the first post (posting took %.0f s); %s, machine busy %s %%. Its CPU figures are "+
		"those of a server at its limit on this machine.", r.Server, oldkit.Fnum(lat.MaxMS, 0), oldkit.Fnum(lat.P99MS, 0),
		oldkit.Fnum(r.WindowS, 1), durationS, strings.Join(cpu, ", "), oldkit.Fnum(r.MachineBusy, 0))
}
