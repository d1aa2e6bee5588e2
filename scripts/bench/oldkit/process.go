package oldkit

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a child started in a process group of its own, so that stopping it also
// stops whatever it started (nginx's workers).
type Process struct {
	name   string
	cmd    *exec.Cmd
	output *TailBuffer
	done   chan struct{}
	Err    error
}

// startProcess starts cmd in a new process group; its stderr (and stdout unless the
// caller set one) are kept, the last 64 KiB, for error messages.
func StartProcess(name string, cmd *exec.Cmd) (*Process, error) {
	p := &Process{name: name, cmd: cmd, output: &TailBuffer{Max: 64 << 10}, done: make(chan struct{})}
	cmd.SysProcAttr = ChildAttr()
	if cmd.Stdout == nil {
		cmd.Stdout = p.output
	}
	cmd.Stderr = p.output
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.Err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id (also its process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.Err
	default:
		return false, nil
	}
}

// Output is the tail of what the process printed.
func (p *Process) Output() string { return p.output.String() }

// Stop sends sig to the process group, waits up to grace, then kills the group. It is
// safe to call more than once.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
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

// childAttr puts a child in a process group of its own (so that a terminal's Ctrl-C
// reaches the benchmark, which then stops its children in order) and has the kernel kill
// it should the benchmark die without cleaning up.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// tailBuffer keeps the last max bytes written to it.
type TailBuffer struct {
	mu  sync.Mutex
	Max int
	buf bytes.Buffer
}

var _ io.Writer = (*TailBuffer)(nil)

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
