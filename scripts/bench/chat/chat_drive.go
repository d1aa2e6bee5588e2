package chat

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// chatWorker is the load generator process, seen from the benchmark.
type chatWorker struct {
	proc  *oldkit.Process
	stdin io.WriteCloser
	lines chan string // its stdout, closed when it ends
}

// startChatWorker starts `bench chat -worker` (this same program) and hands it spec.
func startChatWorker(root string, spec chatLoadSpec) (*chatWorker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("load generator: %w", err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("load generator: %w", err)
	}
	cmd := exec.Command(exe, "chat", "-worker")
	cmd.Dir = root
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("load generator: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("load generator: %w", err)
	}
	proc, err := oldkit.StartProcess("load generator", cmd)
	if err != nil {
		return nil, err
	}
	w := &chatWorker{proc: proc, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(w.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
	}()
	if err := w.send(string(b)); err != nil {
		w.Stop()
		return nil, err
	}
	return w, nil
}

func (w *chatWorker) send(line string) error {
	if _, err := io.WriteString(w.stdin, line+"\n"); err != nil {
		return fmt.Errorf("load generator: %w", err)
	}
	return nil
}

// expect waits up to timeout for the worker's next line, which must start with word, and
// returns the rest of it.
func (w *chatWorker) expect(ctx context.Context, word string, timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case line, ok := <-w.lines:
		if !ok {
			<-w.proc.Done()
			return "", fmt.Errorf("load generator ended before %s (%v): %s", word, w.proc.Err, w.proc.Output())
		}
		rest, found := strings.CutPrefix(line, word)
		if !found {
			return "", fmt.Errorf("load generator: expected %s, got %q", word, line)
		}
		return strings.TrimSpace(rest), nil
	case <-timer.C:
		return "", fmt.Errorf("load generator: no %s within %s: %s", word, timeout, w.proc.Output())
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (w *chatWorker) Stop() {
	_ = w.stdin.Close()
	w.proc.Stop(syscall.SIGTERM, 5*time.Second)
}

// chatProc is a server process whose CPU and memory are reported.
type chatProc struct {
	Name string
	Pid  int
}

// chatRun drives one measurement: the load generator against a server.
type chatRun struct {
	root  string
	spec  chatLoadSpec
	procs []chatProc
	idle  time.Duration // measured with the clients connected, before the warm-up
	alive func() error  // the server(s) still running
	logf  func(format string, a ...any)
}

// run measures the server's processes while the load generator runs.
func (r chatRun) run(ctx context.Context, server string) (chatServerResult, error) {
	res := chatServerResult{Server: server, IdleS: r.idle.Seconds()}
	w, err := startChatWorker(r.root, r.spec)
	if err != nil {
		return res, err
	}
	defer w.Stop()
	if _, err := w.expect(ctx, "READY", r.spec.Join+10*time.Second); err != nil {
		return res, r.withAlive(err)
	}
	r.logf("  %d clients in the room", totalClients(r.spec))
	for _, p := range r.procs {
		res.Procs = append(res.Procs, chatProcUsage{Name: p.Name, Pid: p.Pid})
	}
	if err := r.idleUsage(ctx, res.Procs); err != nil {
		return res, err
	}
	if err := w.send("GO"); err != nil {
		return res, err
	}
	if _, err := w.expect(ctx, "START", r.spec.WarmupMax+30*time.Second); err != nil {
		return res, r.withAlive(err)
	}
	r.logf("  warm-up done; measuring %s at %.0f messages/s", r.spec.Duration, r.spec.Rate)
	t0, busy0 := time.Now(), mustCPUTimes()
	cpu0, err := r.cpu(res.Procs)
	if err != nil {
		return res, err
	}
	workerCPU0, _ := oldkit.CpuSeconds([]int{w.proc.Pid()})
	sampler := startRSSSampler(res.Procs, 250*time.Millisecond)
	_, err = w.expect(ctx, "DONE", r.spec.Duration+r.spec.Drain+30*time.Second)
	rss := sampler.stop()
	if err != nil {
		return res, r.withAlive(err)
	}
	res.WindowS = time.Since(t0).Seconds()
	res.MachineBusy = oldkit.BusySince(busy0)
	cpu1, err := r.cpu(res.Procs)
	if err != nil {
		return res, err
	}
	workerCPU1, _ := oldkit.CpuSeconds([]int{w.proc.Pid()})
	// max: the kernel's utime+stime of a nearly idle process has been seen to step back a tick.
	res.WorkerCPUPercent = max(0, 100*(workerCPU1-workerCPU0)/res.WindowS)
	for i := range res.Procs {
		p := &res.Procs[i]
		p.CPUSeconds = cpu1[i] - cpu0[i]
		p.CPUPercent = 100 * p.CPUSeconds / res.WindowS
		p.RSSMeanMB, p.RSSMaxMB = rss[i].mean/oldkit.Mb, rss[i].max/oldkit.Mb
	}
	line, err := w.expect(ctx, "RESULT", 30*time.Second)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal([]byte(line), &res.Load); err != nil {
		return res, fmt.Errorf("load generator: result: %w", err)
	}
	return res, r.alive()
}

// withAlive adds the server's fate to err when it has exited.
func (r chatRun) withAlive(err error) error {
	if aerr := r.alive(); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// idleUsage measures CPU and RSS with every client connected and nothing posted.
func (r chatRun) idleUsage(ctx context.Context, procs []chatProcUsage) error {
	if r.idle <= 0 {
		return nil
	}
	c0, err := r.cpu(procs)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := oldkit.SleepUntil(ctx, t0.Add(r.idle)); err != nil {
		return err
	}
	c1, err := r.cpu(procs)
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	for i := range procs {
		procs[i].IdleCPUPercent = 100 * (c1[i] - c0[i]) / secs
		if st, err := oldkit.ReadProcStat(procs[i].Pid); err == nil {
			procs[i].IdleRSSMB = float64(st.RSSBytes) / oldkit.Mb
		}
	}
	return nil
}

// cpu returns the CPU seconds of each process so far.
func (r chatRun) cpu(procs []chatProcUsage) ([]float64, error) {
	out := make([]float64, len(procs))
	for i, p := range procs {
		s, err := oldkit.CpuSeconds([]int{p.Pid})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		out[i] = s
	}
	return out, nil
}

func totalClients(spec chatLoadSpec) int {
	n := len(spec.Senders)
	for _, g := range spec.Groups {
		n += g.Clients
	}
	return n
}

func mustCPUTimes() oldkit.CpuTimes {
	t, _ := oldkit.ReadCPUTimes()
	return t
}

// rssSampler samples the RSS of processes until stopped.
type rssSampler struct {
	stopc chan struct{}
	done  chan []rssStats
}

type rssStats struct{ mean, max float64 }

func startRSSSampler(procs []chatProcUsage, every time.Duration) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{}), done: make(chan []rssStats, 1)}
	go func() {
		sums := make([]float64, len(procs))
		out := make([]rssStats, len(procs))
		n := 0
		tick := time.NewTicker(every)
		defer tick.Stop()
		sample := func() {
			for i, p := range procs {
				if st, err := oldkit.ReadProcStat(p.Pid); err == nil {
					v := float64(st.RSSBytes)
					sums[i] += v
					out[i].max = max(out[i].max, v)
				}
			}
			n++
		}
		sample()
		for {
			select {
			case <-tick.C:
				sample()
			case <-s.stopc:
				sample()
				for i := range out {
					out[i].mean = sums[i] / float64(n)
				}
				s.done <- out
				return
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() []rssStats {
	close(s.stopc)
	return <-s.done
}
