package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"onair/scripts/bench/abuse"
	"onair/scripts/bench/chat"
	"onair/scripts/bench/cluster"
	"onair/scripts/bench/idle"
	"onair/scripts/bench/live"
	"onair/scripts/bench/record"
	"onair/scripts/bench/web"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// subcommand is one benchmark.
type subcommand struct {
	summary string
	// run gets the arguments after the subcommand's name, the repository root and the
	// command line to record with the results.
	run func(ctx context.Context, args []string, root, command string, stdout, stderr io.Writer) error
	// limit bounds the whole run, so that a hung server cannot keep it going.
	limit time.Duration
}

// subcommands lists the benchmarks.
func subcommands() map[string]subcommand {
	return map[string]subcommand{
		"abuse": {summary: "RSS growth under hostile clients (pong flood, pre-auth RTMP, chat sockets, idle TCP) with a publisher and a player served; CPU cost of playback tokens",
			run: abuse.RunAbuse, limit: 15 * time.Minute},
		"chat":         {summary: "chat fan-out, 1,000 websockets in one room at 100 messages/s: latency, loss, deliveries per CPU second; onair vs socket.io", run: chat.RunChat, limit: 8 * time.Minute},
		"cluster-chat": {summary: "chat across two onair nodes sharing MongoDB: cross-node delivery latency and loss", run: chat.RunClusterChat, limit: 5 * time.Minute},
		"idle":         {summary: "onair and its embedded database as make run starts them, nobody connected: CPU over a minute", run: idle.RunIdle, limit: 5 * time.Minute},
		"live": {
			summary: "RTMP in, HLS out: latency, first frame, CPU and memory per publisher, HLS requests per CPU second; onair vs nginx-rtmp",
			run:     live.RunLive,
			limit:   20 * time.Minute,
		},
		"record":      {summary: "recording off vs on (CPU, RSS), RSS and spool through a 60 s S3 outage, publisher left to replay playlist", run: record.RunRecord, limit: 10 * time.Minute},
		"cluster-hls": {summary: "HLS viewers through a non-origin node vs the origin: requests/s and CPU per request", run: cluster.RunClusterHLS, limit: 8 * time.Minute},
		"cluster-churn": {summary: "three nodes restarted in turn under 12 publishers and 100 LL-HLS players: recordings, viewer counts, stalls; origin requests behind the CDN example",
			run: cluster.RunClusterChurn, limit: 15 * time.Minute},
		"web": {summary: "room page weight and time to the first video frame in headless Chromium", run: web.RunWeb, limit: 8 * time.Minute},
	}
}

func main() {
	// go-rtmp's client logs every chunk size change on logrus's standard logger.
	logrus.SetOutput(io.Discard)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := subcommands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		printUsage(stderr, cmds)
		if len(args) == 0 {
			return errors.New("no benchmark named")
		}
		return flag.ErrHelp
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		printUsage(stderr, cmds)
		return fmt.Errorf("unknown benchmark %q", args[0])
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cmd.limit)
	defer cancel()
	command := "go run ./scripts/bench " + strings.Join(args, " ")
	return cmd.run(ctx, args[1:], root, command, stdout, stderr)
}

func printUsage(w io.Writer, cmds map[string]subcommand) {
	fmt.Fprintln(w, "usage: go run ./scripts/bench <benchmark> [flags]   (go run ./scripts/bench <benchmark> -h for its flags)")
	fmt.Fprintln(w, "benchmarks:")
	names := make([]string, 0, len(cmds))
	for name := range cmds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-8s %s\n", name, cmds[name].summary)
	}
}

// repoRoot is the directory holding go.mod, from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("bench: run it inside the repository (no go.mod above the working directory)")
		}
		dir = parent
	}
}
