package chat

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// chatSocketIO is the socket.io peer (scripts/bench/socketio/server.js) under Node.
type chatSocketIO struct {
	proc *oldkit.Process
	addr string // host:port
}

// socketIODir holds the peer's server.js, package.json and package-lock.json.
func socketIODir(root string) string { return filepath.Join(root, "scripts", "bench", "socketio") }

// ensureSocketIO installs the peer's pinned dependencies (npm ci) unless node_modules
// matches the lock file already, and returns the installed socket.io version.
func ensureSocketIO(ctx context.Context, root string, log io.Writer) (string, error) {
	dir := socketIODir(root)
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", fmt.Errorf("socket.io peer: %w", err)
	}
	installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil || installed.ModTime().Before(lock.ModTime()) {
		fmt.Fprintf(log, "%s bench chat: npm ci in %s\n", time.Now().Format("15:04:05"), dir)
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("socket.io peer: npm ci: %w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "socket.io", "package.json"))
	if err != nil {
		return "", fmt.Errorf("socket.io peer: %w", err)
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", fmt.Errorf("socket.io peer: socket.io's package.json: %w", err)
	}
	return pkg.Version, nil
}

// startSocketIO starts the peer on a free loopback port.
func startSocketIO(ctx context.Context, root string) (*chatSocketIO, error) {
	cmd := exec.Command("node", filepath.Join(socketIODir(root), "server.js"), "0")
	cmd.Dir = socketIODir(root)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("socket.io peer: %w", err)
	}
	proc, err := oldkit.StartProcess("socket.io peer", cmd)
	if err != nil {
		return nil, err
	}
	s := &chatSocketIO{proc: proc}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "listening http://"); ok && !sent {
				addr <- rest
				sent = true
			}
		}
	}()
	select {
	case s.addr = <-addr:
	case <-proc.Done():
		return nil, fmt.Errorf("socket.io peer exited at start: %s", proc.Output())
	case <-time.After(20 * time.Second):
		s.Stop()
		return nil, fmt.Errorf("socket.io peer did not listen within 20 s: %s", proc.Output())
	case <-ctx.Done():
		s.Stop()
		return nil, ctx.Err()
	}
	return s, nil
}

func (s *chatSocketIO) Pid() int { return s.proc.Pid() }

// URL is the websocket URL of the Engine.IO endpoint.
func (s *chatSocketIO) URL() string {
	return "ws://" + s.addr + "/socket.io/?EIO=4&transport=websocket"
}

func (s *chatSocketIO) Alive() error {
	if exited, err := s.proc.Exited(); exited {
		return fmt.Errorf("socket.io peer exited (%v): %s", err, s.proc.Output())
	}
	return nil
}

func (s *chatSocketIO) Stop() { s.proc.Stop(syscall.SIGTERM, 5*time.Second) }

// nodeVersion is `node --version`.
func nodeVersion(ctx context.Context) string { return oldkit.FirstLine(ctx, "node", "--version") }
