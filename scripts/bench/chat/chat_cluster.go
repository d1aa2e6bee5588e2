package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Group names of bench cluster-chat.
const (
	clusterRemoteName = "node B (other node)"
	clusterLocalName  = "node A (sender's node)"
)

// runClusterChat is `bench cluster-chat`: two onair nodes on one FerretDB, a sender on
// node A, readers on node B (and a few on A for comparison); chat crosses between the
// nodes through the capped event log that every node tails.
func RunClusterChat(ctx context.Context, args []string, root, command string, stdout, stderr io.Writer) error {
	cfg, err := parseClusterChatFlags(args, root, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s bench cluster-chat: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	res := &clusterChatResults{
		Command: command, Started: time.Now().UTC().Format(time.RFC3339), Machine: oldkit.DescribeMachine(ctx),
		Load: chatLoadParams{Readers: cfg.remote + cfg.local, Senders: 1, Rate: cfg.load.rate,
			DurationS: cfg.load.duration.Seconds(), WarmupS: cfg.load.warmup.Seconds(), TextBytes: cfg.load.textBytes},
	}
	tmp, err := os.MkdirTemp("", "onair-bench-cluster-chat-")
	if err != nil {
		return fmt.Errorf("bench cluster-chat: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "onair")
	if res.Onair, err = oldkit.CopyBinary(cfg.out.onair, bin); err != nil {
		return fmt.Errorf("bench cluster-chat: %w", err)
	}
	res.Onair.Path, _ = filepath.Rel(root, cfg.out.onair)

	r, err := measureClusterChat(ctx, cfg, root, tmp, bin, logf)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		logf("error: %v", err)
		res.Errors = append(res.Errors, err.Error())
	} else {
		g, _ := clusterRemoteGroup(r.Load)
		logf("node B: %d deliveries, %d lost; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms",
			g.Delivered, g.Lost, g.Latency.P50MS, g.Latency.P99MS, g.Latency.MaxMS)
	}
	res.Result = r
	res.Machine.LoadEnd = oldkit.LoadAvg()
	res.Finished = time.Now().UTC().Format(time.RFC3339)
	res.Verdicts = clusterChatVerdicts(res)
	section := clusterChatSection(res)
	fmt.Fprintln(stdout, section)
	jsonPath := filepath.Join(cfg.out.outDir, "cluster-chat.json")
	if err := oldkit.WriteJSONFile(jsonPath, res); err != nil {
		return fmt.Errorf("bench cluster-chat: %w", err)
	}
	logf("raw results: %s", jsonPath)
	switch {
	case len(res.Errors) > 0:
		return fmt.Errorf("bench cluster-chat: the measurement failed; %s left unchanged", cfg.out.markdown)
	case cfg.out.writeMD:
		if err := oldkit.UpdateSection(cfg.out.markdown, "cluster-chat", oldkit.BenchmarksIntro, section); err != nil {
			return err
		}
		logf("wrote the bench:cluster-chat section of %s", cfg.out.markdown)
	}
	return nil
}

func measureClusterChat(ctx context.Context, cfg clusterChatConfig, root, tmp, bin string, logf func(string, ...any)) (chatServerResult, error) {
	logf("starting FerretDB and onair nodes A and B")
	ferretBin, err := oldkit.RigTool(root, "ferretdb")
	if err != nil {
		return chatServerResult{}, err
	}
	ferret, err := oldkit.StartRigMongo(ctx, ferretBin, filepath.Join(tmp, "ferretdb"))
	if err != nil {
		return chatServerResult{}, err
	}
	defer ferret.Stop()
	var nodes [2]*oldkit.ChatOnair
	for i, name := range []string{"a", "b"} {
		env := append(oldkit.ChatRateEnv(), "ONAIR_NODE_ID=bench-"+name)
		nodes[i], err = oldkit.StartChatOnair(ctx, "onair-"+name, bin, filepath.Join(tmp, "data-"+name), ferret.URI, env...)
		if err != nil {
			return chatServerResult{}, err
		}
		defer nodes[i].Stop()
	}
	a, b := nodes[0], nodes[1]
	const slug = "bench-cluster"
	senders, err := chatSenders(ctx, newChatAPI(a.Http), slug, 1, a.ChatURL(slug))
	if err != nil {
		return chatServerResult{}, err
	}
	spec := cfg.load.spec(chatProtoOnair)
	spec.Senders = senders
	spec.Groups = []chatGroupSpec{{Name: clusterRemoteName, URL: b.ChatURL(slug), Clients: cfg.remote}}
	if cfg.local > 0 {
		spec.Groups = append(spec.Groups, chatGroupSpec{Name: clusterLocalName, URL: a.ChatURL(slug), Clients: cfg.local})
	}
	logf("%d readers on node B, %d on node A, the sender on node A", cfg.remote, cfg.local)
	run := chatRun{
		root: root, spec: spec, idle: cfg.idle, logf: logf,
		procs: []chatProc{{Name: "onair A", Pid: a.Pid()}, {Name: "onair B", Pid: b.Pid()}, {Name: oldkit.NameFerret, Pid: ferret.Proc.Pid()}},
		alive: func() error { return errors.Join(a.Alive(), b.Alive()) },
	}
	return run.run(ctx, "onair cluster")
}

// clusterChatSection renders the bench:cluster-chat section of BENCHMARKS.md.
func clusterChatSection(r *clusterChatResults) string {
	var b strings.Builder
	m, l := r.Machine, r.Load
	b.WriteString("## Chat across nodes: two onair nodes sharing MongoDB\n\n")
	fmt.Fprintf(&b, "Produced by `%s` on %s (finished %s).\n\n", r.Command, r.Started, r.Finished)
	fmt.Fprintf(&b, "Machine: %d cores (`nproc`), %s, Linux %s (`uname -r`), %s. Load average (1, 5, 15 min) %s at "+
		"the start, %s at the end; *machine busy* is the whole machine's CPU use during the window, in %% of all cores.\n\n",
		m.CPUs, m.CPUModel, m.Kernel, m.Go, m.LoadStart, m.LoadEnd)
	b.WriteString(r.Onair.Line())
	fmt.Fprintf(&b, "Two onair processes (nodes A and B: own data directories, HTTP and RTMP ports, node ids) on one "+
		"FerretDB. One signed-in sender on node A posts %.0f messages/s for %.0f s (%d messages, %d bytes of text) "+
		"after a warm-up (posting until node B's sockets receive, then %.0f s more); %d anonymous sockets read the "+
		"room on node B. Node A stores each message and appends it to the capped event log `chat_events` (in "+
		"batches of up to 50 ms); node B tails the log and delivers to its sockets. The load generator and the "+
		"stamps are those of `bench chat` (see its section). %s\n\n",
		l.Rate, l.DurationS, int(l.Rate*l.DurationS), l.TextBytes, l.WarmupS, groupClients(r.Result.Load, clusterRemoteName), localNote(r.Result.Load))
	oldkit.RunErrors(&b, r.Errors)
	b.WriteString("### Targets\n\n")
	var rows [][]string
	for _, v := range r.Verdicts {
		rows = append(rows, []string{v.Measure, v.Onair, v.Target, v.Verdict})
	}
	b.WriteString(oldkit.Table([]string{"measure", "onair", "target", "verdict"}, rows))
	b.WriteString("\n### Details\n\n")
	b.WriteString(clusterDetails(r.Result))
	return b.String()
}

func localClients(l chatLoadResult) int { return groupClients(l, clusterLocalName) }

func localNote(l chatLoadResult) string {
	if n := localClients(l); n > 0 {
		return fmt.Sprintf("%d more sockets read on node A, for comparison (the sender reads too).", n)
	}
	return ""
}

// clusterDetails is a table of the groups of receivers, and of the processes.
func clusterDetails(r chatServerResult) string {
	l := r.Load
	var rows [][]string
	for _, g := range l.Groups {
		x := g.Latency
		rows = append(rows, []string{g.Name, fmt.Sprint(g.Clients), fmt.Sprintf("%d / %d (%d; %d)", g.Delivered, g.Expected, g.Lost, g.Duplicates),
			fmt.Sprintf("%d; %d", g.Complete, g.Dropped),
			fmt.Sprintf("%s / %s / %s / %s / %s", oldkit.Fnum(x.P50MS, 1), oldkit.Fnum(x.P90MS, 1), oldkit.Fnum(x.P99MS, 1), oldkit.Fnum(x.P999MS, 1), oldkit.Fnum(x.MaxMS, 1))})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Messages posted / acknowledged / refused / unanswered: %d / %d / %d / %d; ack latency p50 %s ms, p99 %s ms; "+
		"window (first send to last delivery) %s s; machine busy %s %%; load generator %s %% of a core.\n\n",
		l.Sent, l.Acked, l.Refused, l.Unanswered, oldkit.Fnum(l.AckLatency.P50MS, 1), oldkit.Fnum(l.AckLatency.P99MS, 1),
		oldkit.Fnum(r.WindowS, 2), oldkit.Fnum(r.MachineBusy, 0), oldkit.Fnum(r.WorkerCPUPercent, 0))
	b.WriteString(oldkit.Table([]string{"sockets", "count", "deliveries received / expected (lost; duplicates)",
		"got every message; disconnected", "latency p50 / p90 / p99 / p99.9 / max (ms)"}, rows))
	b.WriteString("\n")
	var prow [][]string
	for _, p := range r.Procs {
		prow = append(prow, []string{p.Name, oldkit.Fnum(p.IdleCPUPercent, 1), fmt.Sprintf("%s (%s)", oldkit.Fnum(p.CPUPercent, 1), oldkit.Fnum(p.CPUSeconds, 2)),
			fmt.Sprintf("%s → %s (%s)", oldkit.Fnum(p.IdleRSSMB, 1), oldkit.Fnum(p.RSSMeanMB, 1), oldkit.Fnum(p.RSSMaxMB, 1))})
	}
	b.WriteString(oldkit.Table([]string{"process", "CPU idle, % of a core", "CPU in the window, % of a core (s)", "RSS idle → mean (max), MB"}, prow))
	return b.String()
}
