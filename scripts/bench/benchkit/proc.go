package benchkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a child started in a process group of its own, so that stopping it also
// stops whatever it started (nginx's workers, the browser of a script).
type Process struct {
	Name    string
	Started time.Time
	cmd     *exec.Cmd
	output  *TailBuffer
	done    chan struct{}
	err     error
}

// StartProcess starts cmd in a new process group; the last 64 KiB of its stderr (and
// stdout unless the caller set one) are kept for error messages.
func StartProcess(name string, cmd *exec.Cmd) (*Process, error) {
	p := &Process{Name: name, cmd: cmd, output: &TailBuffer{Max: 64 << 10}, done: make(chan struct{})}
	cmd.SysProcAttr = ChildAttr()
	if cmd.Stdout == nil {
		cmd.Stdout = p.output
	}
	cmd.Stderr = p.output
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.Started = time.Now()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *Process) Pid() int              { return p.cmd.Process.Pid }
func (p *Process) Done() <-chan struct{} { return p.done }
func (p *Process) Output() string        { return p.output.String() }

// Wait waits until the process has exited and returns how.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Alive returns an error, with what the process printed, once it has exited.
func (p *Process) Alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v): %s", p.Name, p.err, Tail(p.Output(), 2000))
	default:
		return nil
	}
}

// Stop sends sig to the process group, waits up to grace, then kills the group. It is
// safe to call more than once.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) {
	if p.Alive() != nil {
		return
	}
	_ = syscall.Kill(-p.Pid(), sig)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
}

// StopAll stops processes in parallel.
func StopAll(ps []*Process) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() { p.Stop(syscall.SIGTERM, 3*time.Second) })
	}
	wg.Wait()
}

// ChildAttr puts a child in a process group of its own (so that a terminal's Ctrl-C
// reaches the benchmark, which then stops its children in order) and has the kernel kill
// it should the benchmark die without cleaning up.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// TailBuffer keeps the last Max bytes written to it.
type TailBuffer struct {
	mu  sync.Mutex
	Max int
	buf bytes.Buffer
}

func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if extra := t.buf.Len() - t.Max; extra > 0 {
		t.buf.Next(extra)
	}
	return len(p), nil
}

func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.buf.String())
}

// FirstLine is the first line a command prints (stdout or stderr), or "".
func FirstLine(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, name, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 on Linux
// whatever the kernel's own tick rate.
const userHZ = 100

// procStat reads a process's parent, CPU time (utime + stime, in ticks) and RSS. The
// command name (field 2) may hold spaces and parentheses, so fields are counted from its
// end.
func procStat(pid int) (ppid int, ticks, rss uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])) // f[0] is field 3 (state)
	if len(f) < 22 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ppid, _ = strconv.Atoi(f[1])
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	pages, _ := strconv.ParseUint(f[21], 10, 64) // rss, in pages: VmRSS
	return ppid, utime + stime, pages * uint64(os.Getpagesize()), nil
}

// ProcessTree returns pid and its children (nginx: the master and its workers).
func ProcessTree(pid int) []int {
	pids := []int{pid}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		child, _ := strconv.Atoi(filepath.Base(d))
		if ppid, _, _, err := procStat(child); err == nil && ppid == pid && child != pid {
			pids = append(pids, child)
		}
	}
	return pids
}

// GroupStat sums CPU time and RSS over pids.
func GroupStat(pids []int) (cpuTicks, rss uint64, err error) {
	for _, pid := range pids {
		_, t, r, err := procStat(pid)
		if err != nil {
			return 0, 0, fmt.Errorf("procstat: %w", err)
		}
		cpuTicks, rss = cpuTicks+t, rss+r
	}
	return cpuTicks, rss, nil
}

// CPUSeconds is the CPU time pids have used so far.
func CPUSeconds(pids ...int) (float64, error) {
	ticks, _, err := GroupStat(pids)
	return float64(ticks) / userHZ, err
}

// RSS is the summed RSS of pids, 0 if one has gone.
func RSS(pids ...int) uint64 {
	_, rss, _ := GroupStat(pids)
	return rss
}

// Usage is what a group of processes used over a window.
type Usage struct {
	Wall       time.Duration
	CPUSeconds float64
	CPUPercent float64 // of one core: 100 is one core busy all the time
	RSSMean    uint64
	RSSMax     uint64
	RSSFirst   uint64
	RSSLast    uint64
}

// MeasureUsage samples pids every interval for window and returns their CPU use over
// the window and their summed RSS.
func MeasureUsage(ctx context.Context, pids []int, window, interval time.Duration) (Usage, error) {
	start := time.Now()
	cpu0, rss, err := GroupStat(pids)
	if err != nil {
		return Usage{}, err
	}
	u := Usage{RSSFirst: rss, RSSMax: rss}
	sum, n := rss, uint64(1)
	for end := start.Add(window); ; {
		next := time.Now().Add(interval)
		if next.After(end) {
			next = end
		}
		if err := SleepUntil(ctx, next); err != nil {
			return Usage{}, err
		}
		cpu, rss, err := GroupStat(pids)
		if err != nil {
			return Usage{}, err
		}
		sum, n, u.RSSMax, u.RSSLast = sum+rss, n+1, max(u.RSSMax, rss), rss
		if !next.Before(end) {
			u.Wall = time.Since(start)
			u.CPUSeconds = float64(cpu-cpu0) / userHZ
			u.CPUPercent = 100 * u.CPUSeconds / u.Wall.Seconds()
			u.RSSMean = sum / n
			return u, nil
		}
	}
}

// Meter measures, from its start, the CPU time a group of processes uses (summed) and
// how busy the whole machine is.
type Meter struct {
	pids  []int
	start time.Time
	cpu   float64
	busy  cpuTimes
}

// StartMeter starts measuring pids.
func StartMeter(pids ...int) Meter {
	cpu, _ := CPUSeconds(pids...)
	return Meter{pids: pids, start: time.Now(), cpu: cpu, busy: readCPUTimes()}
}

// CPU is the CPU seconds the group has used since the start (a process that has exited
// counts as 0: the caller checks that they run).
func (m Meter) CPU() float64 {
	cpu, _ := CPUSeconds(m.pids...)
	return cpu - m.cpu
}

// Wall is the seconds since the start.
func (m Meter) Wall() float64 { return time.Since(m.start).Seconds() }

// Percent is the group's CPU use since the start, in % of one core.
func (m Meter) Percent() float64 { return 100 * m.CPU() / m.Wall() }

// Busy is how busy the machine has been since the start, in % of all its cores.
func (m Meter) Busy() float64 { return m.busy.busySince() }

// StartPublishers starts a looping ffmpeg publisher of input to each URL, 25 ms apart so
// that their key frames do not all arrive in the same instant; on an error it returns
// those it started, for the caller to stop.
func StartPublishers(ctx context.Context, input string, urls []string) ([]*Process, error) {
	var pubs []*Process
	for _, u := range urls {
		p, err := StartFFmpeg(input, u)
		if err != nil {
			return pubs, err
		}
		pubs = append(pubs, p)
		if err := SleepUntil(ctx, time.Now().Add(25*time.Millisecond)); err != nil {
			return pubs, err
		}
	}
	return pubs, nil
}

// AllAlive fails when server or one of its publishers has exited, with the end of the
// server's log.
func AllAlive(server *Process, pubs []*Process) error {
	for _, p := range append([]*Process{server}, pubs...) {
		if err := p.Alive(); err != nil {
			return fmt.Errorf("%w; %s log: %s", err, server.Name, Tail(server.Output(), 1500))
		}
	}
	return nil
}

// DirSize is the size of the regular files under dir.
func DirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // removed while walking (old segments)
			}
			return err
		}
		if info, err := d.Info(); err == nil && d.Type().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// cpuTimes is the machine's busy and total CPU time so far, from /proc/stat, in ticks.
type cpuTimes struct{ busy, total uint64 }

// readCPUTimes reads /proc/stat.
func readCPUTimes() cpuTimes {
	var t cpuTimes
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	for i, s := range strings.Fields(line) {
		v, _ := strconv.ParseUint(s, 10, 64)
		if i == 0 || i > 8 { // "cpu"; guest and guest_nice are already counted in user and nice
			continue
		}
		t.total += v
		if i != 4 && i != 5 { // idle, iowait
			t.busy += v
		}
	}
	return t
}

// busySince is how busy the machine has been since t0, in % of all its cores.
func (t0 cpuTimes) busySince() float64 {
	t1 := readCPUTimes()
	if t1.total <= t0.total {
		return 0
	}
	return 100 * float64(t1.busy-t0.busy) / float64(t1.total-t0.total)
}
