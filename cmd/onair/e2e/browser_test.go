package e2e

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"onair/media"
	"onair/scripts/testenv"
)

// TestBrowser runs the web app's end-to-end scenario (web/ui/e2e/scenario.mjs) in Debian's
// headless Chromium, driven by playwright-core, against onair with FerretDB and MinIO.
// The browser side signs up, creates a room and copies its stream key from the dashboard;
// this side then publishes with that key as OBS would, and stops when asked. Screenshots
// go to .artifacts/screenshots, the page benchmark's figures to .artifacts/browser-test/page.json.
func TestBrowser(t *testing.T) {
	bt := newBrowserTools(t)
	s3 := testenv.StartS3(t)
	o, _ := startWithMongo(t, s3Env(s3)...)

	start := time.Now()
	sc := bt.start(t, "scenario.mjs", 5*time.Minute,
		"ONAIR_URL="+o.HTTP,
		"ONAIR_SCREENSHOTS="+filepath.Join(bt.root, ".artifacts", "screenshots"),
		"ONAIR_BENCH_OUT="+filepath.Join(bt.root, ".artifacts", "browser-test", "page.json"),
	)
	stdin := sc.stdin

	answer := func() {
		if _, err := io.WriteString(stdin, "ok\n"); err != nil {
			t.Errorf("answer the scenario: %v", err)
		}
	}
	var pub *testenv.Publisher
	lines := bufio.NewScanner(sc.stdout)
	for lines.Scan() {
		line := lines.Text()
		switch {
		case strings.HasPrefix(line, "@publish "):
			key := strings.TrimSpace(strings.TrimPrefix(line, "@publish "))
			pub = testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{Size: "640x360"})
			t.Logf("publishing with the key copied from the dashboard (%s)", media.KeyID(key))
			answer()
		case line == "@stop":
			if pub == nil {
				t.Fatal("the scenario asked to stop before publishing")
			}
			if err := pub.Stop(); err != nil {
				t.Errorf("ffmpeg: %v\n%s", err, pub.Stderr())
			}
			answer()
		default:
			t.Log(line)
		}
	}
	err := sc.cmd.Wait()
	t.Logf("browser scenario took %s", time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("browser scenario failed: %v\n%s", err, sc.stderr.String())
	}

	// The live health the dashboard shows is for the room's owner only.
	var e apiErr
	if code, _ := newClient(t, o.HTTP).do("GET", "/api/v1/rooms/browser-test-room/health", nil, &e); code != 401 {
		t.Errorf("anonymous health request: %d, want 401", code)
	}
	carol := newClient(t, o.HTTP)
	carol.signUp("carol")
	if code, _ := carol.do("GET", "/api/v1/rooms/browser-test-room/health", nil, &e); code != 403 {
		t.Errorf("health request of another user: %d, want 403", code)
	}
}

// browserTools are what the browser tests need: playwright-core (make e2e-deps), the
// browser bundle and hls.js (make ui), node and Chromium.
type browserTools struct {
	root, e2eDir, node, chromium string
}

func newBrowserTools(t *testing.T) browserTools {
	t.Helper()
	root := testenv.RepoRoot(t)
	bt := browserTools{root: root, e2eDir: filepath.Join(root, "web", "ui", "e2e"), chromium: os.Getenv("CHROMIUM")}
	if _, err := os.Stat(filepath.Join(bt.e2eDir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed: run make e2e-deps (make test does): %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "web", "ui", "dist", "manifest.json")); err != nil {
		t.Fatalf("the browser bundle is not built: run make ui (make test does): %v", err)
	}
	var err error
	if bt.node, err = exec.LookPath("node"); err != nil {
		t.Fatalf("node is required for the browser tests: %v", err)
	}
	if bt.chromium == "" {
		bt.chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bt.chromium); err != nil {
		t.Fatalf("Chromium is required (scripts/deps.sh installs it): %v", err)
	}
	return bt
}

// browserScript is a browser script running, talking to the test on its stdin and stdout.
type browserScript struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.Reader
	stderr *strings.Builder
}

// start runs script (in web/ui/e2e) with env added, killed with the browser it launched
// after timeout or when the test ends.
func (bt browserTools) start(t *testing.T, script string, timeout time.Duration, env ...string) *browserScript {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bt.node, filepath.Join(bt.e2eDir, script))
	cmd.Dir = bt.e2eDir
	cmd.Env = append(append(os.Environ(), "CHROMIUM="+bt.chromium), env...)
	// Its own process group, so that the browser it launched goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	sc := &browserScript{cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = sc.stderr
	var err error
	if sc.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if sc.stdout, err = cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return sc
}
