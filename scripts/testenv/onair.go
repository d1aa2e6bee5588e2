// Package testenv starts the real parts that onair's tests run against: the onair binary
// itself, ffmpeg publishing as OBS would, and (for later tests) the MongoDB-compatible and
// S3 servers built by scripts/tools.sh. Everything it starts is stopped by t.Cleanup.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RepoRoot is the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// OnairBinary returns the onair binary to test: $ONAIR_TEST_BIN (set by make test), or
// one built into the test's temporary directory.
func OnairBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ONAIR_TEST_BIN"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "onair")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/onair")
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build onair: %v\n%s", err, b)
	}
	return out
}

// Onair is a running onair process.
type Onair struct {
	// HTTP is the base URL, e.g. http://127.0.0.1:41234 (https://... with http.tls_addr).
	HTTP string
	// Plain is the plain HTTP base URL while HTTPS is on (it redirects to HTTP), else "".
	Plain string
	// RTMP is the publish URL without the key, e.g. rtmp://127.0.0.1:41235/live.
	RTMP string
	// RTMPS is the same over TLS (rtmps://...) when rtmp.tls_addr is set, else "".
	RTMPS string
	// Metrics is the metrics listener's base URL (e.g. http://127.0.0.1:41236; /metrics
	// is there), or "" with metrics off.
	Metrics string
	// DataDir is the process's data.dir.
	DataDir string
	// Client talks to HTTP: OnairOptions.Client, or a plain one.
	Client *http.Client

	cmd  *exec.Cmd
	logs *Buffer
	done chan struct{}
	err  error
}

// OnairOptions configure StartOnair.
type OnairOptions struct {
	// Binary defaults to OnairBinary(t).
	Binary string
	// Env adds ONAIR_* overrides; listen addresses and data.dir are set already.
	Env []string
	// DataDir defaults to a fresh temporary directory.
	DataDir string
	// Args are extra command-line arguments.
	Args []string
	// Client is what talks to onair's HTTP: set it to one trusting the test CA (TestCA.Client)
	// when onair serves HTTPS. Nil: an HTTP/1.1 client of its own.
	Client *http.Client
}

// bannerRE reads what onair prints at start (cmd/onair/main.go: printBanner).
var bannerRE = regexp.MustCompile(`(?m)^OBS server: (\S+)\n(?:OBS server over TLS: (\S+)\n)?(?:stream key: \S+\n)?` +
	`watch: (https?://[^/\s]+)\S*\n(?:plain http: (\S+) .*\n)?metrics: (\S+)\n`)

// StartOnair starts onair on free loopback ports and waits until it listens.
func StartOnair(t testing.TB, opts OnairOptions) *Onair {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = OnairBinary(t)
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	cmd := exec.Command(opts.Binary, opts.Args...)
	cmd.Env = append(hermeticEnv(),
		"ONAIR_HTTP_ADDR=127.0.0.1:0",
		"ONAIR_RTMP_ADDR=127.0.0.1:0",
		"ONAIR_METRICS_ADDR=127.0.0.1:0",
		"ONAIR_DATA_DIR="+opts.DataDir,
		"ONAIR_LOG_LEVEL=debug",
	)
	cmd.Env = append(cmd.Env, opts.Env...)
	logs := &Buffer{}
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start onair: %v", err)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	}
	o := &Onair{cmd: cmd, logs: logs, done: make(chan struct{}), DataDir: opts.DataDir, Client: opts.Client}

	banner := make(chan []string, 1)
	go func() {
		var seen bytes.Buffer
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			seen.WriteString(sc.Text() + "\n")
			if m := bannerRE.FindStringSubmatch(seen.String()); m != nil && !sent {
				banner <- m
				sent = true
			}
		}
	}()
	go func() {
		o.err = cmd.Wait()
		close(o.done)
	}()
	t.Cleanup(func() {
		o.Stop(t)
		if t.Failed() {
			t.Logf("onair logs:\n%s", o.Logs())
		}
	})

	select {
	case m := <-banner:
		o.RTMP, o.RTMPS, o.HTTP, o.Plain = m[1], m[2], m[3], m[4]
		if m[5] != "off" {
			o.Metrics = strings.TrimSuffix(m[5], "/metrics")
		}
	case <-o.done:
		t.Fatalf("onair exited at start: %v\n%s", o.err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("onair did not print its banner within 20 s\n%s", logs.String())
	}
	Eventually(t, 10*time.Second, func() (bool, string) {
		resp, err := o.Client.Get(o.HTTP + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return o
}

// hermeticEnv is this process's environment without ONAIR_* variables: onair reads every
// one as a config key (and refuses unknown ones, such as ONAIR_TEST_BIN), so the test's own
// settings and a developer's shell must not reach it.
func hermeticEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ONAIR_") {
			env = append(env, kv)
		}
	}
	return env
}

// Logs returns what onair has logged so far.
func (o *Onair) Logs() string { return o.logs.String() }

// Pid is the process id.
func (o *Onair) Pid() int { return o.cmd.Process.Pid }

// Signal sends sig to the process.
func (o *Onair) Signal(sig os.Signal) { _ = o.cmd.Process.Signal(sig) }

// Done is closed when the process has exited.
func (o *Onair) Done() <-chan struct{} { return o.done }

// Stop ends the process with SIGTERM, then SIGKILL after 10 s.
func (o *Onair) Stop(t testing.TB) {
	select {
	case <-o.done:
		return
	default:
	}
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
		t.Errorf("onair did not stop within 10 s of SIGTERM; killing it")
		_ = o.cmd.Process.Kill()
		<-o.done
	}
}

// Get fetches path from onair's HTTP server and returns the status and body.
func (o *Onair) Get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	return o.get(t, o.HTTP+path)
}

// GetMetrics fetches /metrics from the metrics listener and returns the status and body.
func (o *Onair) GetMetrics(t testing.TB) (int, []byte) {
	t.Helper()
	if o.Metrics == "" {
		t.Fatal("onair runs without metrics (metrics.addr is empty)")
	}
	return o.get(t, o.Metrics+"/metrics")
}

func (o *Onair) get(t testing.TB, url string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := o.Client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, b
}

// Buffer is a bytes buffer that processes and loggers may write to concurrently while a
// test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Contains reports whether s was written.
func (b *Buffer) Contains(s string) bool { return strings.Contains(b.String(), s) }

// Contains reports whether the logs contain s.
func (o *Onair) LogsContain(s string) bool { return strings.Contains(o.Logs(), s) }

// String describes the process for messages.
func (o *Onair) String() string { return fmt.Sprintf("onair(http=%s rtmp=%s)", o.HTTP, o.RTMP) }
