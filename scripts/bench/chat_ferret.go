package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// chatFerret is a FerretDB server (MongoDB wire protocol, SQLite files) for the chat
// benchmarks, started as the tests start it (scripts/testenv.StartMongoDB).
type chatFerret struct {
	proc *process
	uri  string
}

// startChatFerret starts .tools/bin/ferretdb (built by scripts/tools.sh) on free ports
// with its data under dir.
func startChatFerret(ctx context.Context, root, dir string) (*chatFerret, error) {
	bin := filepath.Join(root, ".tools", "bin", "ferretdb")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("ferretdb: %w (build it with scripts/tools.sh ferretdb)", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ferretdb: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	debugPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"--handler=sqlite", "--sqlite-url=file:"+dir+"/", "--state-dir="+dir,
		"--listen-addr=127.0.0.1:"+strconv.Itoa(port),
		"--debug-addr=127.0.0.1:"+strconv.Itoa(debugPort),
		"--telemetry=disable", "--log-level=warn", "--test-capped-cleanup-interval=1s")
	proc, err := startProcess("ferretdb", cmd)
	if err != nil {
		return nil, err
	}
	f := &chatFerret{proc: proc, uri: fmt.Sprintf("mongodb://127.0.0.1:%d/?directConnection=true", port)}
	client := newHTTPClient()
	defer client.CloseIdleConnections()
	ready := fmt.Sprintf("http://127.0.0.1:%d/debug/readyz", debugPort)
	err = waitReady(ctx, proc, 20*time.Second, func() error {
		code, err := httpStatus(ctx, client, ready)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("readyz: HTTP %d", code)
		}
		return err
	})
	if err != nil {
		f.Stop()
		return nil, err
	}
	return f, nil
}

func (f *chatFerret) Pid() int { return f.proc.Pid() }

func (f *chatFerret) Stop() { f.proc.Stop(syscall.SIGTERM, 10*time.Second) }
