// Command bench measures onair against its peers on this machine and writes the figures
// to BENCHMARKS.md (between its bench:<name> markers) and .artifacts/bench/<name>.json.
//
//	go run ./scripts/bench live -onair bin/onair
//
// Each benchmark is a subcommand and a package of its own; `bench help` lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"onair/scripts/bench/abuse"
	"onair/scripts/bench/benchkit"
	"onair/scripts/bench/chat"
	"onair/scripts/bench/cluster"
	"onair/scripts/bench/idle"
	"onair/scripts/bench/ladder"
	"onair/scripts/bench/live"
	"onair/scripts/bench/record"
	"onair/scripts/bench/web"
)

// benchmark is one subcommand; limit bounds its run, so that a hung server cannot keep
// it going.
type benchmark struct {
	summary string
	run     func(ctx context.Context, env benchkit.Env, args []string) error
	limit   time.Duration
}

var benchmarks = map[string]benchmark{
	"abuse": {"RSS growth under hostile clients (pong flood, pre-auth RTMP, chat sockets, idle TCP) with a publisher and a player served; CPU cost of playback tokens",
		abuse.Run, 15 * time.Minute},
	"chat":         {"chat fan-out, 1,000 websockets in one room at 100 messages/s: latency, loss, deliveries per CPU second; onair vs socket.io", chat.Run, 8 * time.Minute},
	"cluster-chat": {"chat across two onair nodes sharing MongoDB: cross-node delivery latency and loss", chat.RunCluster, 5 * time.Minute},
	"idle":         {"onair and its embedded database as make run starts them, nobody connected: CPU over a minute", idle.Run, 5 * time.Minute},
	"ladder":       {"simulcast ladder vs one rendition at the same total bit rate: CPU per delivered byte, RSS per rendition; hls.js switch-down time in Chromium", ladder.Run, 15 * time.Minute},
	"live": {"RTMP in, HLS out: latency, first frame, CPU and memory per publisher, HLS requests per CPU second; onair vs nginx-rtmp",
		live.Run, 20 * time.Minute},
	"record":      {"recording off vs on (CPU, RSS), RSS and spool through a 60 s S3 outage, publisher left to replay playlist", record.Run, 10 * time.Minute},
	"cluster-hls": {"HLS viewers through a non-origin node vs the origin: requests/s and CPU per request", cluster.RunHLS, 8 * time.Minute},
	"cluster-churn": {"three nodes restarted in turn under 12 publishers and 100 LL-HLS players: recordings, viewer counts, stalls; origin requests behind the CDN example",
		cluster.RunChurn, 15 * time.Minute},
	"web": {"room page weight and time to the first video frame in headless Chromium", web.Run, 8 * time.Minute},
}

func main() {
	// go-rtmp's client logs every chunk size change on logrus's standard logger.
	logrus.SetOutput(io.Discard)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	b, ok := benchmarks[strings.Join(args[:min(1, len(args))], "")]
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: go run ./scripts/bench <benchmark> [flags]   (<benchmark> -h for its flags)\nbenchmarks:")
		for _, name := range slices.Sorted(maps.Keys(benchmarks)) {
			fmt.Fprintf(os.Stderr, "  %-13s %s\n", name, benchmarks[name].summary)
		}
		if len(args) > 0 && strings.TrimLeft(args[0], "-") == "help" || len(args) > 0 && args[0] == "-h" {
			return flag.ErrHelp
		}
		return fmt.Errorf("unknown benchmark %q", strings.Join(args[:min(1, len(args))], ""))
	}
	root, err := os.Getwd()
	for err == nil {
		if _, serr := os.Stat(filepath.Join(root, "go.mod")); serr == nil {
			break
		}
		if filepath.Dir(root) == root {
			return errors.New("run it inside the repository (no go.mod above the working directory)")
		}
		root = filepath.Dir(root)
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.limit)
	defer cancel()
	env := benchkit.Env{Name: args[0], Root: root, Command: "go run ./scripts/bench " + strings.Join(args, " "), Stdout: os.Stdout, Stderr: os.Stderr}
	return b.run(ctx, env, args[1:])
}
