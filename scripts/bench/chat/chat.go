package chat

import (
	"context"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// chatBench is one run of `bench chat`: onair's chat and a socket.io room broadcast under
// the same load, from the same load generator.
type chatBench struct {
	cfg  chatConfig
	root string
	tmp  string
	bin  string // the copy of the onair binary that is measured
	res  *chatResults
	oldkit.RunLog
}

// runChat is `bench chat` (and, with -worker, its load generator).
func RunChat(ctx context.Context, args []string, root, command string, stdout, stderr io.Writer) error {
	cfg, err := parseChatFlags(args, root, stderr)
	if err != nil {
		return err
	}
	if cfg.worker {
		return runChatWorker(ctx, os.Stdin, stdout)
	}
	b := &chatBench{cfg: cfg, root: root, res: &chatResults{
		Command: command, Started: time.Now().UTC().Format(time.RFC3339), Machine: oldkit.DescribeMachine(ctx),
		Node: nodeVersion(ctx),
		Load: chatLoadParams{Readers: cfg.readers, Senders: cfg.senders, Rate: cfg.load.rate,
			DurationS: cfg.load.duration.Seconds(), WarmupS: cfg.load.warmup.Seconds(), TextBytes: cfg.load.textBytes},
	}}
	b.RunLog = oldkit.RunLog{Name: "chat", Out: stderr, Errs: &b.res.Errors}
	if b.tmp, err = os.MkdirTemp("", "onair-bench-chat-"); err != nil {
		return fmt.Errorf("bench chat: %w", err)
	}
	defer os.RemoveAll(b.tmp)
	// A copy, so that a `make build` meanwhile cannot change the binary under test.
	b.bin = filepath.Join(b.tmp, "onair")
	if b.res.Onair, err = oldkit.CopyBinary(cfg.out.onair, b.bin); err != nil {
		return fmt.Errorf("bench chat: %w", err)
	}
	b.res.Onair.Path, _ = filepath.Rel(root, cfg.out.onair)

	for _, server := range cfg.servers {
		if ctx.Err() != nil {
			break
		}
		var r chatServerResult
		var err error
		switch server {
		case oldkit.NameOnair:
			r, err = b.measureOnair(ctx)
		case nameSocketIO:
			r, err = b.measureSocketIO(ctx)
		}
		if err != nil {
			b.Fail(fmt.Errorf("bench chat: %s: %w", server, err))
			continue
		}
		b.logSummary(r)
		b.res.Servers = append(b.res.Servers, r)
	}
	if err := ctx.Err(); err != nil {
		b.Fail(fmt.Errorf("bench chat: stopped: %w", err))
	}
	return b.write(stdout)
}

// spec is the load of bench chat against one server.
func (b *chatBench) spec(proto, url string, senders []chatSenderSpec) chatLoadSpec {
	s := b.cfg.load.spec(proto)
	s.Groups = []chatGroupSpec{{Name: "readers", URL: url, Clients: b.cfg.readers}}
	s.Senders = senders
	return s
}

// measureOnair runs the load against onair with FerretDB.
func (b *chatBench) measureOnair(ctx context.Context) (chatServerResult, error) {
	dir, err := os.MkdirTemp(b.tmp, "onair-")
	if err != nil {
		return chatServerResult{}, err
	}
	b.Logf("onair: starting FerretDB and onair")
	ferretBin, err := oldkit.RigTool(b.root, "ferretdb")
	if err != nil {
		return chatServerResult{}, err
	}
	ferret, err := oldkit.StartRigMongo(ctx, ferretBin, filepath.Join(dir, "ferretdb"))
	if err != nil {
		return chatServerResult{}, err
	}
	defer ferret.Stop()
	o, err := oldkit.StartChatOnair(ctx, oldkit.NameOnair, b.bin, filepath.Join(dir, "data"), ferret.URI, oldkit.ChatRateEnv()...)
	if err != nil {
		return chatServerResult{}, err
	}
	defer o.Stop()
	const slug = "bench-chat"
	senders, err := chatSenders(ctx, newChatAPI(o.Http), slug, b.cfg.senders, o.ChatURL(slug))
	if err != nil {
		return chatServerResult{}, err
	}
	b.Logf("onair: %d readers and %d senders joining", b.cfg.readers, b.cfg.senders)
	run := chatRun{
		root: b.root, spec: b.spec(chatProtoOnair, o.ChatURL(slug), senders), idle: b.cfg.idle, logf: b.Logf,
		procs: []chatProc{{Name: oldkit.NameOnair, Pid: o.Pid()}, {Name: oldkit.NameFerret, Pid: ferret.Proc.Pid()}},
		alive: o.Alive,
	}
	return run.run(ctx, oldkit.NameOnair)
}

// chatSenders signs up n accounts (the first creates room slug) and returns them as
// senders on chatURL.
func chatSenders(ctx context.Context, api *chatAPI, slug string, n int, chatURL string) ([]chatSenderSpec, error) {
	var out []chatSenderSpec
	for i := range n {
		acct, err := api.signUp(ctx, "bench"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if err := api.createRoom(ctx, acct, slug); err != nil {
				return nil, err
			}
		}
		out = append(out, chatSenderSpec{URL: chatURL, Cookie: acct.Cookie})
	}
	return out, nil
}

// measureSocketIO runs the load against the socket.io peer.
func (b *chatBench) measureSocketIO(ctx context.Context) (chatServerResult, error) {
	version, err := ensureSocketIO(ctx, b.root, b.Out)
	if err != nil {
		return chatServerResult{}, err
	}
	b.res.SocketIO = version
	b.Logf("socket.io %s: starting the peer", version)
	s, err := startSocketIO(ctx, b.root)
	if err != nil {
		return chatServerResult{}, err
	}
	defer s.Stop()
	senders := make([]chatSenderSpec, b.cfg.senders)
	for i := range senders {
		senders[i] = chatSenderSpec{URL: s.URL()}
	}
	b.Logf("socket.io: %d readers and %d senders joining", b.cfg.readers, b.cfg.senders)
	run := chatRun{
		root: b.root, spec: b.spec(chatProtoSocketIO, s.URL(), senders), idle: b.cfg.idle, logf: b.Logf,
		procs: []chatProc{{Name: nameSocketIO, Pid: s.Pid()}},
		alive: s.Alive,
	}
	return run.run(ctx, nameSocketIO)
}

// logSummary prints one server's main figures.
func (b *chatBench) logSummary(r chatServerResult) {
	t := r.Load.Total
	b.Logf("  %s: %d/%d acked, %d deliveries, %d lost; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		r.Server, r.Load.Acked, r.Load.Sent, t.Delivered, t.Lost, t.Latency.P50MS, t.Latency.P99MS, t.Latency.MaxMS)
	for _, p := range r.Procs {
		b.Logf("  %s: CPU %.1f %% of a core (%.2f s), RSS %.1f MB (max %.1f)", p.Name, p.CPUPercent, p.CPUSeconds, p.RSSMeanMB, p.RSSMaxMB)
	}
}

// write prints the section, saves chat.json and, after a complete run, rewrites the
// bench:chat section of BENCHMARKS.md.
func (b *chatBench) write(stdout io.Writer) error {
	b.res.Machine.LoadEnd = oldkit.LoadAvg()
	b.res.Finished = time.Now().UTC().Format(time.RFC3339)
	b.res.Verdicts = chatVerdicts(b.res)
	section := chatSection(b.res)
	fmt.Fprintln(stdout, section)
	if err := oldkit.WriteJSONFile(filepath.Join(b.cfg.out.outDir, "chat.json"), b.res); err != nil {
		return fmt.Errorf("bench chat: %w", err)
	}
	b.Logf("raw results: %s", filepath.Join(b.cfg.out.outDir, "chat.json"))
	switch {
	case len(b.res.Errors) > 0:
		return fmt.Errorf("bench chat: %d measurement(s) failed; %s left unchanged", len(b.res.Errors), b.cfg.out.markdown)
	case len(b.cfg.servers) < len(chatServers()):
		b.Logf("only some servers ran: %s left unchanged", b.cfg.out.markdown)
	case b.cfg.out.writeMD:
		if err := oldkit.UpdateSection(b.cfg.out.markdown, "chat", oldkit.BenchmarksIntro, section); err != nil {
			return err
		}
		b.Logf("wrote the bench:chat section of %s", b.cfg.out.markdown)
	}
	return nil
}
