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
	root := testenv.RepoRoot(t)
	chromium := browserDeps(t)
	s3 := testenv.StartS3(t)
	o, _ := startWithMongo(t, s3Env(s3)...)

	var pub *testenv.Publisher
	runBrowserScript(t, "scenario.mjs", []string{
		"ONAIR_URL=" + o.HTTP,
		"CHROMIUM=" + chromium,
		"ONAIR_SCREENSHOTS=" + filepath.Join(root, ".artifacts", "screenshots"),
		"ONAIR_BENCH_OUT=" + filepath.Join(root, ".artifacts", "browser-test", "page.json"),
	}, func(command string, args []string) string {
		switch command {
		case "@publish":
			key := args[0]
			pub = testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{Size: "640x360"})
			t.Logf("publishing with the key copied from the dashboard (%s)", media.KeyID(key))
		case "@stop":
			if pub == nil {
				t.Fatal("the scenario asked to stop before publishing")
			}
			if err := pub.Stop(); err != nil {
				t.Errorf("ffmpeg: %v\n%s", err, pub.Stderr())
			}
		default:
			t.Fatalf("the scenario asked for %s", command)
		}
		return "ok"
	})

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

// browserDeps fails the test unless the browser tests can run; it returns Chromium's path.
func browserDeps(t *testing.T) string {
	t.Helper()
	root := testenv.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "web", "ui", "e2e", "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed: run make e2e-deps (make test does): %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "web", "ui", "dist", "manifest.json")); err != nil {
		t.Fatalf("the browser bundle is not built: run make ui (make test does): %v", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is required for the browser test: %v", err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Chromium is required (scripts/deps.sh installs it): %v", err)
	}
	return chromium
}

// runBrowserScript runs a script of web/ui/e2e with node and env, until it exits. Lines it
// prints starting with "@" are commands for the Go side: do runs each one (command and
// its space-separated arguments) and returns the line the script is answered ("ok" for
// most). Other lines are logged.
func runBrowserScript(t *testing.T, script string, env []string, do func(command string, args []string) string) {
	t.Helper()
	e2eDir := filepath.Join(testenv.RepoRoot(t), "web", "ui", "e2e")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(e2eDir, script))
	cmd.Dir = e2eDir
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so that the browser it launched goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "@") {
			t.Log(line)
			continue
		}
		fields := strings.Fields(line)
		answer := do(fields[0], fields[1:])
		if _, err := io.WriteString(stdin, answer+"\n"); err != nil {
			t.Errorf("answer %s: %v", script, err)
		}
	}
	err = cmd.Wait()
	t.Logf("%s took %s", script, time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("%s failed: %v\n%s", script, err, stderr.String())
	}
}
