package live

import (
	"flag"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// liveConfig is the `live` benchmark's command line.
type liveConfig struct {
	onair      string
	outDir     string
	markdown   string
	writeMD    bool
	publishers []int
	warmup     time.Duration // latency: before the window
	window     time.Duration // latency: frames measured
	firstRuns  int
	loadWarmup time.Duration
	loadWindow time.Duration
	viewers    oldkit.WrkOptions
	fullDVR    time.Duration
	phases     map[string]bool
}

// livePhases are the parts of `bench live`, in the order they run.
func livePhases() []string { return []string{"play", "load", "viewers"} }

func parseLiveFlags(args []string, root string, stderr io.Writer) (liveConfig, error) {
	fs := flag.NewFlagSet("bench live", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := liveConfig{}
	fs.StringVar(&c.onair, "onair", "", "onair binary to measure (make build writes bin/onair)")
	fs.StringVar(&c.outDir, "out", filepath.Join(root, ".artifacts", "bench"), "directory for the input file and live.json")
	fs.StringVar(&c.markdown, "benchmarks", filepath.Join(root, "BENCHMARKS.md"), "Markdown file whose bench:live section is rewritten")
	fs.BoolVar(&c.writeMD, "write", true, "rewrite the bench:live section of -benchmarks (only when every phase succeeded)")
	pubs := fs.String("publishers", "1,10,40", "publisher counts of the CPU and memory phase")
	phases := fs.String("phases", strings.Join(livePhases(), ","), "phases to run: play (latency, first frame), load (CPU, memory), viewers (HLS requests); BENCHMARKS.md is only rewritten after all of them")
	fs.DurationVar(&c.fullDVR, "full-dvr", 130*time.Second, "CPU and memory: at the largest publisher count, also measure memory this long after the publishers started (DVR window 2 min + 10 s); 0 skips it")
	fs.DurationVar(&c.warmup, "warmup", 5*time.Second, "latency: publishing before the measured window")
	fs.DurationVar(&c.window, "window", 30*time.Second, "latency: window whose frames are measured")
	fs.IntVar(&c.firstRuns, "first-frame-runs", 3, "first playable frame: runs per server")
	fs.DurationVar(&c.loadWarmup, "load-warmup", 10*time.Second, "CPU and memory: publishing before the window")
	fs.DurationVar(&c.loadWindow, "load-window", 20*time.Second, "CPU and memory: sampling window")
	fs.IntVar(&c.viewers.Connections, "viewers", 100, "HLS load: concurrent wrk connections")
	fs.IntVar(&c.viewers.Threads, "viewer-threads", 2, "HLS load: wrk threads")
	fs.DurationVar(&c.viewers.Duration, "viewer-duration", 15*time.Second, "HLS load: wrk duration")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("bench live: unexpected arguments %q", fs.Args())
	}
	if c.onair == "" {
		return c, fmt.Errorf("bench live: -onair is required (run make build, then -onair bin/onair)")
	}
	abs, err := filepath.Abs(c.onair)
	if err != nil {
		return c, fmt.Errorf("bench live: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return c, fmt.Errorf("bench live: onair binary: %w (run make build first)", err)
	}
	c.onair = abs
	if c.publishers, err = oldkit.ParseCounts(*pubs); err != nil {
		return c, fmt.Errorf("bench live: -publishers: %w", err)
	}
	c.phases = map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		if !slices.Contains(livePhases(), p) {
			return c, fmt.Errorf("bench live: -phases: unknown phase %q (want some of %s)", p, strings.Join(livePhases(), ","))
		}
		c.phases[p] = true
	}
	if c.firstRuns < 1 || c.window <= 0 || c.loadWindow <= 0 || c.viewers.Duration < time.Second {
		return c, fmt.Errorf("bench live: runs, windows and durations must be positive")
	}
	return c, nil
}
