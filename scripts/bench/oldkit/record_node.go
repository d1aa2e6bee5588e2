package oldkit

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// rigNode is an onair process using MongoDB (accounts, rooms, broadcasts), started with
// the shipped defaults but for the ONAIR_* variables it is given.
type RigNode struct {
	Proc    *Process
	dataDir string
	HTTP    string // http://host:port
	RTMP    string // rtmp://host:port/app, to which a stream key is appended
	metrics string // http://host:port of the metrics listener
}

// rigNodeOptions configure startRigNode.
type RigNodeOptions struct {
	Binary  string
	DataDir string
	Mongo   string // MongoDB URI
	// httpAddr is a fixed listen address (host:port) for nodes that advertise themselves
	// to each other; empty picks a free port.
	HttpAddr string
	Env      []string // more ONAIR_* variables
	// readyTimeout bounds the wait for its MongoDB indexes (default 20 s); a MongoDB
	// under load can take longer.
	ReadyTimeout time.Duration
}

// startRigNode starts onair and waits until it serves HTTP and its MongoDB indexes exist.
func StartRigNode(ctx context.Context, opts RigNodeOptions) (*RigNode, error) {
	if opts.HttpAddr == "" {
		opts.HttpAddr = "127.0.0.1:0"
	}
	env := append([]string{
		"ONAIR_HTTP_ADDR=" + opts.HttpAddr,
		"ONAIR_DATA_DIR=" + opts.DataDir,
		"ONAIR_LOG_LEVEL=info", // "MongoDB ready" is an info line
		"ONAIR_MONGO_URI=" + opts.Mongo,
		"ONAIR_MONGO_DATABASE=onair",
	}, opts.Env...)
	proc, banner, err := LaunchOnair(ctx, "onair", opts.Binary, env...)
	if err != nil {
		return nil, err
	}
	n := &RigNode{Proc: proc, dataDir: opts.DataDir, HTTP: banner.HTTP, RTMP: banner.RTMP, metrics: banner.Metrics}
	if err := WaitHTTP200(ctx, proc, n.HTTP+"/healthz", 10*time.Second); err != nil {
		n.Stop()
		return nil, fmt.Errorf("onair: %w", err)
	}
	err = WaitReady(ctx, proc, cmp.Or(opts.ReadyTimeout, 20*time.Second), func() error {
		if !strings.Contains(proc.Output(), "MongoDB ready") {
			return fmt.Errorf("no %q in its log yet", "MongoDB ready")
		}
		return nil
	})
	if err != nil {
		n.Stop()
		return nil, fmt.Errorf("onair: %w", err)
	}
	return n, nil
}

// PublishURL is where a publisher with key sends.
func (n *RigNode) PublishURL(key string) string { return strings.TrimSuffix(n.RTMP, "/") + "/" + key }

// Pid is onair's process id.
func (n *RigNode) Pid() int { return n.Proc.Pid() }

// Alive returns an error once onair has exited.
func (n *RigNode) Alive() error {
	if exited, err := n.Proc.Exited(); exited {
		return fmt.Errorf("onair exited (%v): %s", err, n.Proc.Output())
	}
	return nil
}

// RecordingsDir holds the runs' logs: the recordings until their chunks are in the store.
func (n *RigNode) RecordingsDir() string { return filepath.Join(n.dataDir, "runs") }

// Metrics fetches /metrics from the metrics listener.
func (n *RigNode) Metrics(ctx context.Context, client *http.Client) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.metrics+"/metrics", nil)
	if err != nil {
		return "", fmt.Errorf("metrics: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("metrics: HTTP %d", resp.StatusCode)
	}
	return string(b), nil
}

// Stop ends onair with SIGTERM (it ends its streams and finishes their recordings), then
// SIGKILL after 30 s.
func (n *RigNode) Stop() { n.Proc.Stop(syscall.SIGTERM, 30*time.Second) }
