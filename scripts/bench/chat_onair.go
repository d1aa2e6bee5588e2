package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// chatOnair is an onair node with MongoDB (accounts, rooms, chat) for the chat benchmarks.
type chatOnair struct {
	proc *process
	http string // http://127.0.0.1:port
}

// chatRateEnv raises the per-user chat rate limit (default 5 per 10 s) above what each
// benchmark sender posts (the rate divided among the senders).
func chatRateEnv() []string {
	return []string{"ONAIR_CHAT_RATE_LIMIT=1000", "ONAIR_CHAT_RATE_PER=1s"}
}

// startChatOnair starts binary with MongoDB at mongoURI, its data in dataDir, and extra
// ONAIR_* settings, and waits until it serves HTTP and reaches MongoDB.
func startChatOnair(ctx context.Context, name, binary, dataDir, mongoURI string, extra ...string) (*chatOnair, error) {
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(),
		"ONAIR_HTTP_ADDR=127.0.0.1:0",
		"ONAIR_RTMP_ADDR=127.0.0.1:0",
		"ONAIR_DATA_DIR="+dataDir,
		"ONAIR_LOG_LEVEL=warn",
		"ONAIR_MONGO_URI="+mongoURI,
		"ONAIR_MONGO_DATABASE=onair",
	)
	cmd.Env = append(cmd.Env, extra...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	proc, err := startProcess(name, cmd)
	if err != nil {
		return nil, err
	}
	o := &chatOnair{proc: proc}
	banner := make(chan [2]string, 1)
	go readBanner(stdout, banner)
	select {
	case m := <-banner:
		o.http = m[1]
	case <-proc.Done():
		return nil, fmt.Errorf("%s exited at start: %s", name, proc.Output())
	case <-time.After(20 * time.Second):
		o.Stop()
		return nil, fmt.Errorf("%s printed no banner within 20 s: %s", name, proc.Output())
	case <-ctx.Done():
		o.Stop()
		return nil, ctx.Err()
	}
	client := newHTTPClient()
	defer client.CloseIdleConnections()
	err = waitReady(ctx, proc, 30*time.Second, func() error {
		code, err := httpStatus(ctx, client, o.http+"/readyz") // MongoDB reachable
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("readyz: HTTP %d", code)
		}
		return err
	})
	if err != nil {
		o.Stop()
		return nil, err
	}
	return o, nil
}

func (o *chatOnair) Pid() int { return o.proc.Pid() }

// ChatURL is the websocket URL of a room's chat.
func (o *chatOnair) ChatURL(slug string) string {
	return "ws" + strings.TrimPrefix(o.http, "http") + "/api/v1/rooms/" + url.PathEscape(slug) + "/chat"
}

func (o *chatOnair) Alive() error {
	if exited, err := o.proc.Exited(); exited {
		return fmt.Errorf("%s exited (%v): %s", o.proc.name, err, o.proc.Output())
	}
	return nil
}

func (o *chatOnair) Stop() { o.proc.Stop(syscall.SIGTERM, 15*time.Second) }
