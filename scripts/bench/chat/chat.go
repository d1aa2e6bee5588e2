// Package chat is `bench chat` (onair's chat fan-out against a socket.io room broadcast,
// under the same load from the same load generator) and `bench cluster-chat` (chat
// across two onair nodes sharing MongoDB).
package chat

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"onair/scripts/bench/benchkit"
)

// loadSettings are a benchmark's load, recorded with its results; both post for 30 s
// after a 3 s warm-up and wait at most 10 s for the last deliveries.
type loadSettings struct {
	Rate      float64       `json:"messages_per_s"`
	Duration  float64       `json:"duration_s"`
	Warmup    float64       `json:"warmup_s"`
	TextBytes int           `json:"text_bytes"`
	idle      time.Duration // idle CPU is measured this long with every client in
	spec      spec
}

func newLoad(rate float64, idle time.Duration) loadSettings {
	s := spec{Rate: rate, Duration: 30 * time.Second, Warmup: 3 * time.Second, Drain: 10 * time.Second, TextBytes: 64}
	return loadSettings{Rate: rate, Duration: s.Duration.Seconds(), Warmup: s.Warmup.Seconds(), TextBytes: s.TextBytes, idle: idle, spec: s}
}

// procUsage is one server process's CPU and memory: idle with every client connected,
// then over the window (first send to last delivery).
type procUsage struct {
	Name           string  `json:"name"`
	Pid            int     `json:"pid"`
	IdleCPUPercent float64 `json:"idle_cpu_pct_of_core"`
	IdleRSSMB      float64 `json:"idle_rss_mb"`
	CPUSeconds     float64 `json:"cpu_s"`
	CPUPercent     float64 `json:"cpu_pct_of_core"`
	RSSMeanMB      float64 `json:"rss_mean_mb"`
	RSSMaxMB       float64 `json:"rss_max_mb"`
}

// serverResult is one server under the load.
type serverResult struct {
	Server           string      `json:"server"`
	Load             loadResult  `json:"load"`
	WindowS          float64     `json:"window_s"` // the parent's view: START to DONE
	Procs            []procUsage `json:"procs"`
	WorkerCPUPercent float64     `json:"load_generator_cpu_pct_of_core"`
	MachineBusy      float64     `json:"machine_busy_pct"`
}

// perCPU is deliveries per CPU second of the named processes.
func (r serverResult) perCPU(names ...string) float64 {
	var s float64
	for _, p := range r.Procs {
		if strings.Contains(" "+strings.Join(names, " ")+" ", " "+p.Name+" ") {
			s += p.CPUSeconds
		}
	}
	return benchkit.Ratio(float64(r.Load.Total.Delivered), s)
}

// measure runs the load generator (this program, `bench chat -worker`) with s against
// the processes procs, while alive says that the servers still run.
func measure(ctx context.Context, r *benchkit.Run, name string, s spec, idle time.Duration, procs []procUsage, alive func() error) (serverResult, error) {
	res := serverResult{Server: name, Procs: procs}
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	cmd := exec.Command(exe, "chat", "-worker")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return res, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	w, err := benchkit.StartProcess("load generator", cmd)
	if err != nil {
		return res, err
	}
	defer w.Stop(syscall.SIGTERM, 5*time.Second)
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 64<<10), 16<<20)
	expect := func(word string, timeout time.Duration) (string, error) {
		got := make(chan bool, 1)
		go func() { got <- lines.Scan() }()
		select {
		case ok := <-got:
			if rest, found := strings.CutPrefix(lines.Text(), word); ok && found {
				return rest, nil
			} else if ok {
				return "", fmt.Errorf("load generator: expected %s, got %q", word, lines.Text())
			}
			<-w.Done()
		case <-time.After(timeout):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return "", errors.Join(fmt.Errorf("load generator: no %s within %s: %s", word, timeout, benchkit.Tail(w.Output(), 2000)), alive())
	}
	b, _ := json.Marshal(s)
	if _, err := fmt.Fprintf(stdin, "%s\n", b); err != nil {
		return res, err
	}
	if _, err := expect("READY", 100*time.Second); err != nil {
		return res, err
	}
	pids := make([]int, len(procs))
	meters := make([]benchkit.Meter, len(procs))
	startMeters := func() {
		for i, p := range procs {
			pids[i], meters[i] = p.Pid, benchkit.StartMeter(p.Pid)
		}
	}
	r.Logf("  %d clients in the room; %s idle", len(s.Senders)+sum(s.Groups), idle)
	startMeters()
	if err := benchkit.SleepUntil(ctx, time.Now().Add(idle)); err != nil {
		return res, err
	}
	for i, m := range meters {
		procs[i].IdleCPUPercent, procs[i].IdleRSSMB = m.Percent(), float64(benchkit.RSS(pids[i]))/benchkit.MB
	}
	fmt.Fprintln(stdin, "GO")
	if _, err := expect("START", s.Warmup+50*time.Second); err != nil {
		return res, err
	}
	r.Logf("  warm-up done; measuring %s at %.0f messages/s", s.Duration, s.Rate)
	startMeters()
	worker := benchkit.StartMeter(w.Pid())
	rss := sampleRSS(pids)
	_, err = expect("DONE", s.Duration+s.Drain+30*time.Second)
	mean, peak := rss()
	if err != nil {
		return res, err
	}
	res.WindowS, res.MachineBusy = worker.Wall(), worker.Busy()
	// max: the kernel's utime+stime of a nearly idle process has been seen to step back a tick.
	res.WorkerCPUPercent = max(0, worker.Percent())
	for i, m := range meters {
		p := &procs[i]
		p.CPUSeconds, p.CPUPercent, p.RSSMeanMB, p.RSSMaxMB = m.CPU(), m.Percent(), mean[i]/benchkit.MB, peak[i]/benchkit.MB
	}
	line, err := expect("RESULT ", 30*time.Second)
	if err == nil {
		err = json.Unmarshal([]byte(line), &res.Load)
	}
	if err != nil {
		return res, err
	}
	t := res.Load.Total
	r.Logf("  %s: %d/%d acked, %d deliveries, %d lost; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		name, res.Load.Acked, res.Load.Sent, t.Delivered, t.Lost, t.Latency.P50MS, t.Latency.P99MS, t.Latency.MaxMS)
	return res, alive()
}

func sum(gs []group) int {
	n := 0
	for _, g := range gs {
		n += g.Clients
	}
	return n
}

// sampleRSS samples the RSS of pids every 250 ms until the returned func stops it and
// returns their means and peaks.
func sampleRSS(pids []int) func() (mean, peak []float64) {
	stop, done := make(chan struct{}), make(chan [2][]float64, 1)
	go func() {
		sums, peaks, n := make([]float64, len(pids)), make([]float64, len(pids)), 0.0
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			for i, pid := range pids {
				v := float64(benchkit.RSS(pid))
				sums[i], peaks[i] = sums[i]+v, max(peaks[i], v)
			}
			n++
			select {
			case <-tick.C:
				continue
			case <-stop:
			}
			for i := range sums {
				sums[i] /= n
			}
			done <- [2][]float64{sums, peaks}
			return
		}
	}()
	return func() ([]float64, []float64) {
		close(stop)
		r := <-done
		return r[0], r[1]
	}
}

// startNode starts onair on FerretDB for chat: the per-user rate limit (default 5 per
// 10 s) raised above what each sender posts, and no limit on accounts made from one
// address, since every sender signs up from loopback.
func startNode(ctx context.Context, r *benchkit.Run, name, mongo string, env ...string) (*benchkit.Node, error) {
	return benchkit.StartNode(ctx, benchkit.NodeOptions{Binary: r.Bin, ReadyPath: "/readyz", Env: append(append(
		benchkit.MongoEnv(filepath.Join(r.Tmp, "data-"+name), mongo, "warn"),
		"ONAIR_CHAT_RATE_LIMIT=1000", "ONAIR_CHAT_RATE_PER=1s", "ONAIR_AUTH_SIGNUP_LIMIT=0"), env...)})
}

// senders signs up n accounts (the first creates room slug) and returns them as
// senders on chatURL.
func senders(ctx context.Context, base, slug string, n int, chatURL string) ([]group, error) {
	var out []group
	for i := range n {
		api := benchkit.NewAPI(base)
		if err := api.SignUp(ctx, "bench"+strconv.Itoa(i)); err != nil {
			return nil, err
		}
		if i == 0 {
			if _, err := api.CreateRoom(ctx, slug); err != nil {
				return nil, err
			}
		}
		out = append(out, group{URL: chatURL, Cookie: api.Cookie("/")})
	}
	return out, nil
}

// results of bench chat.
type results struct {
	benchkit.Head
	Node     string         `json:"node"`
	SocketIO string         `json:"socket_io"`
	Load     loadSettings   `json:"load"`
	Readers  int            `json:"readers"`
	Senders  int            `json:"senders"`
	Servers  []serverResult `json:"servers"`
}

// Run is `bench chat` and, with -worker, its load generator.
func Run(ctx context.Context, env benchkit.Env, args []string) error {
	if len(args) == 1 && args[0] == "-worker" {
		return runWorker(ctx, os.Stdin, os.Stdout)
	}
	r := benchkit.NewRun(env)
	// 1,000 anonymous readers and 10 signed-in senders (reading too), posting in turn.
	res := &results{Load: newLoad(100, 5*time.Second), Readers: 1000, Senders: 10}
	if err := r.Start(ctx, args, &res.Head); err != nil {
		return err
	}
	defer r.Close()
	res.Node = benchkit.FirstLine(ctx, "node", "--version")
	for i, measure := range []func(context.Context, *benchkit.Run, *results) (serverResult, error){measureOnair, measureSocketIO} {
		if sr, err := measure(ctx, r, res); err != nil {
			r.Fail(fmt.Errorf("%s: %w", []string{"onair", "socket.io"}[i], err))
		} else {
			res.Servers = append(res.Servers, sr)
		}
	}
	res.Machine.Peers = "Node " + cmp.Or(res.Node, "n/a") + ", socket.io " + cmp.Or(res.SocketIO, "n/a")
	return r.Finish(ctx, res, func() string { return chatSection(res) })
}

func measureOnair(ctx context.Context, r *benchkit.Run, res *results) (serverResult, error) {
	r.Logf("onair: starting FerretDB and onair")
	ferret, err := benchkit.StartMongo(ctx, r.Root, filepath.Join(r.Tmp, "ferretdb"))
	if err != nil {
		return serverResult{}, err
	}
	defer ferret.Stop()
	o, err := startNode(ctx, r, "onair", ferret.URI)
	if err != nil {
		return serverResult{}, err
	}
	defer o.Stop()
	const slug = "bench-chat"
	s := res.Load.spec
	s.Proto, s.Groups = protoOnair, []group{{Name: "readers", URL: o.ChatURL(slug), Clients: res.Readers}}
	if s.Senders, err = senders(ctx, o.HTTP, slug, res.Senders, o.ChatURL(slug)); err != nil {
		return serverResult{}, err
	}
	return measure(ctx, r, "onair", s, res.Load.idle, []procUsage{{Name: "onair", Pid: o.Pid()}, {Name: "FerretDB", Pid: ferret.Proc.Pid()}}, o.Alive)
}

// measureSocketIO runs the load against the socket.io peer (scripts/bench/socketio),
// installing its pinned dependencies (npm ci) unless node_modules matches the lock file.
func measureSocketIO(ctx context.Context, r *benchkit.Run, res *results) (serverResult, error) {
	dir := filepath.Join(r.Root, "scripts", "bench", "socketio")
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return serverResult{}, err
	}
	if installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err != nil || installed.ModTime().Before(lock.ModTime()) {
		r.Logf("npm ci in %s", dir)
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return serverResult{}, fmt.Errorf("npm ci: %w: %s", err, out)
		}
	}
	var pkg struct{ Version string }
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "socket.io", "package.json"))
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	if err != nil {
		return serverResult{}, err
	}
	res.SocketIO = pkg.Version
	cmd := exec.Command("node", "server.js", "0")
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return serverResult{}, err
	}
	p, err := benchkit.StartProcess("socket.io peer", cmd)
	if err != nil {
		return serverResult{}, err
	}
	defer p.Stop(syscall.SIGTERM, 5*time.Second)
	addr := make(chan string, 1)
	go func() {
		for sc := bufio.NewScanner(stdout); sc.Scan(); {
			if rest, ok := strings.CutPrefix(sc.Text(), "listening http://"); ok {
				addr <- rest
			}
		}
	}()
	var url string
	select {
	case a := <-addr:
		url = "ws://" + a + "/socket.io/?EIO=4&transport=websocket"
	case <-time.After(20 * time.Second):
		return serverResult{}, fmt.Errorf("socket.io peer did not listen within 20 s: %s", p.Output())
	case <-p.Done():
		return serverResult{}, p.Alive()
	}
	r.Logf("socket.io %s: %d readers and %d senders joining", pkg.Version, res.Readers, res.Senders)
	s := res.Load.spec
	s.Proto, s.Groups = protoSocketIO, []group{{Name: "readers", URL: url, Clients: res.Readers}}
	for range res.Senders {
		s.Senders = append(s.Senders, group{URL: url})
	}
	return measure(ctx, r, "socket.io", s, res.Load.idle, []procUsage{{Name: "socket.io", Pid: p.Pid()}}, p.Alive)
}

// Group names of bench cluster-chat.
const (
	remoteName = "node B (other node)"
	localName  = "node A (sender's node)"
)

// clusterResults of bench cluster-chat.
type clusterResults struct {
	benchkit.Head
	Load   loadSettings `json:"load"`
	Result serverResult `json:"result"`
}

// RunCluster is `bench cluster-chat`: two onair nodes on one FerretDB, a sender on node
// A, readers on node B (and a few on A for comparison); chat crosses between the nodes
// through the capped event log that every node tails.
func RunCluster(ctx context.Context, env benchkit.Env, args []string) error {
	r, res := benchkit.NewRun(env), &clusterResults{Load: newLoad(20, 3*time.Second)}
	return r.Main(ctx, args, &res.Head, res, func() (err error) {
		// 100 readers on node B, 10 on node A for comparison.
		res.Result, err = measureCluster(ctx, r, res.Load, 100, 10)
		return err
	}, func() string { return clusterSection(res) })
}

func measureCluster(ctx context.Context, r *benchkit.Run, lf loadSettings, remote, local int) (serverResult, error) {
	r.Logf("starting FerretDB and onair nodes A and B")
	ferret, err := benchkit.StartMongo(ctx, r.Root, filepath.Join(r.Tmp, "ferretdb"))
	if err != nil {
		return serverResult{}, err
	}
	defer ferret.Stop()
	var nodes [2]*benchkit.Node
	for i, name := range []string{"a", "b"} {
		if nodes[i], err = startNode(ctx, r, name, ferret.URI, "ONAIR_NODE_ID=bench-"+name); err != nil {
			return serverResult{}, err
		}
		defer nodes[i].Stop()
	}
	a, b := nodes[0], nodes[1]
	const slug = "bench-cluster"
	s := lf.spec
	s.Proto, s.Groups = protoOnair, []group{{Name: remoteName, URL: b.ChatURL(slug), Clients: remote}, {Name: localName, URL: a.ChatURL(slug), Clients: local}}
	if s.Senders, err = senders(ctx, a.HTTP, slug, 1, a.ChatURL(slug)); err != nil {
		return serverResult{}, err
	}
	r.Logf("%d readers on node B, %d on node A, the sender on node A", remote, local)
	procs := []procUsage{{Name: "onair A", Pid: a.Pid()}, {Name: "onair B", Pid: b.Pid()}, {Name: "FerretDB", Pid: ferret.Proc.Pid()}}
	return measure(ctx, r, "onair cluster", s, lf.idle, procs, func() error { return errors.Join(a.Alive(), b.Alive()) })
}
