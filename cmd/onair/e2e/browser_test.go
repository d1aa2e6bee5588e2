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
	e2eDir := filepath.Join(root, "web", "ui", "e2e")
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed: run make e2e-deps (make test does): %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "web", "ui", "dist", "manifest.json")); err != nil {
		t.Fatalf("the browser bundle is not built: run make ui (make test does): %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for the browser test: %v", err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Chromium is required (scripts/deps.sh installs it): %v", err)
	}

	s3 := testenv.StartS3(t)
	o, _ := startWithMongo(t, s3Env(s3)...)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(e2eDir, "scenario.mjs"))
	cmd.Dir = e2eDir
	cmd.Env = append(os.Environ(),
		"ONAIR_URL="+o.HTTP,
		"CHROMIUM="+chromium,
		"ONAIR_SCREENSHOTS="+filepath.Join(root, ".artifacts", "screenshots"),
		"ONAIR_BENCH_OUT="+filepath.Join(root, ".artifacts", "browser-test", "page.json"),
	)
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
		t.Fatalf("start the scenario: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	answer := func() {
		if _, err := io.WriteString(stdin, "ok\n"); err != nil {
			t.Errorf("answer the scenario: %v", err)
		}
	}
	var pub *testenv.Publisher
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
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
	err = cmd.Wait()
	t.Logf("browser scenario took %s", time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("browser scenario failed: %v\n%s", err, stderr.String())
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
