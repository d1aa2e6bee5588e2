package benchkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Browser is the Chromium that web/ui/e2e's scripts drive through playwright-core.
type Browser struct {
	Path    string // $CHROMIUM, else /usr/bin/chromium
	Version string // what it prints for --version
	e2eDir  string
}

// FindBrowser checks that web/ui/e2e's dependencies are installed under root and finds
// Chromium.
func FindBrowser(ctx context.Context, root string) (Browser, error) {
	b := Browser{Path: os.Getenv("CHROMIUM"), e2eDir: filepath.Join(root, "web", "ui", "e2e")}
	if _, err := os.Stat(filepath.Join(b.e2eDir, "node_modules", "playwright-core")); err != nil {
		return b, fmt.Errorf("playwright-core is not installed: run make e2e-deps: %w", err)
	}
	if b.Path == "" {
		b.Path = "/usr/bin/chromium"
	}
	// stdout only: Debian's launcher script may complain on stderr.
	out, _ := exec.CommandContext(ctx, b.Path, "--version").Output()
	b.Version = strings.TrimSpace(string(out))
	return b, nil
}

// Script is node running web/ui/e2e's script with args and env added, in a process group
// of its own so that the browser it starts is killed with it when ctx ends (KillGroup
// after it exits).
func (b Browser) Script(ctx context.Context, node, script string, args []string, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(b.e2eDir, script)}, args...)...)
	cmd.Dir, cmd.SysProcAttr = b.e2eDir, ChildAttr()
	cmd.Env = append(append(os.Environ(), "CHROMIUM="+b.Path), env...)
	cmd.Cancel = func() error { return KillGroup(cmd) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// KillGroup kills the process group of a command started with ChildAttr: a browser
// whose parent died.
func KillGroup(cmd *exec.Cmd) error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
