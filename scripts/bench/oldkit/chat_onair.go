package oldkit

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// chatOnair is an onair node with MongoDB (accounts, rooms, chat) for the chat benchmarks.
type ChatOnair struct {
	Proc *Process
	Http string // http://127.0.0.1:port
}

// chatRateEnv raises the per-user chat rate limit (default 5 per 10 s) above what each
// benchmark sender posts (the rate divided among the senders), and lifts the limit on
// accounts made from one address: every sender signs up from loopback.
func ChatRateEnv() []string {
	return []string{"ONAIR_CHAT_RATE_LIMIT=1000", "ONAIR_CHAT_RATE_PER=1s", "ONAIR_AUTH_SIGNUP_LIMIT=0"}
}

// startChatOnair starts binary with MongoDB at mongoURI, its data in dataDir, and extra
// ONAIR_* settings, and waits until it serves HTTP and reaches MongoDB.
func StartChatOnair(ctx context.Context, name, binary, dataDir, mongoURI string, extra ...string) (*ChatOnair, error) {
	env := append([]string{
		"ONAIR_DATA_DIR=" + dataDir,
		"ONAIR_LOG_LEVEL=warn",
		"ONAIR_MONGO_URI=" + mongoURI,
		"ONAIR_MONGO_DATABASE=onair",
	}, extra...)
	proc, banner, err := LaunchOnair(ctx, name, binary, env...)
	if err != nil {
		return nil, err
	}
	o := &ChatOnair{Proc: proc, Http: banner.HTTP}
	if err := WaitHTTP200(ctx, proc, o.Http+"/readyz", 30*time.Second); err != nil { // MongoDB reachable
		o.Stop()
		return nil, err
	}
	return o, nil
}

func (o *ChatOnair) Pid() int { return o.Proc.Pid() }

// ChatURL is the websocket URL of a room's chat.
func (o *ChatOnair) ChatURL(slug string) string {
	return "ws" + strings.TrimPrefix(o.Http, "http") + "/api/v1/rooms/" + url.PathEscape(slug) + "/chat"
}

func (o *ChatOnair) Alive() error {
	if exited, err := o.Proc.Exited(); exited {
		return fmt.Errorf("%s exited (%v): %s", o.Proc.name, err, o.Proc.Output())
	}
	return nil
}

func (o *ChatOnair) Stop() { o.Proc.Stop(syscall.SIGTERM, 15*time.Second) }
