package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// rigFlags are the flags every benchmark on the rig (record, cluster-hls, web) takes.
type rigFlags struct {
	name     string // the subcommand
	onair    string
	outDir   string
	markdown string
	writeMD  bool
}

func (c *rigFlags) register(fs *flag.FlagSet, root string) {
	fs.StringVar(&c.onair, "onair", "", "onair binary to measure (make build writes bin/onair)")
	fs.StringVar(&c.outDir, "out", filepath.Join(root, ".artifacts", "bench"), "directory for the input file and "+c.name+".json")
	fs.StringVar(&c.markdown, "benchmarks", filepath.Join(root, "BENCHMARKS.md"), "Markdown file whose bench:"+c.name+" section is rewritten")
	fs.BoolVar(&c.writeMD, "write", true, "rewrite the bench:"+c.name+" section of -benchmarks (only after a run without errors)")
}

// check validates the flags after parsing and makes the binary's path absolute.
func (c *rigFlags) check(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("bench %s: unexpected arguments %q", c.name, fs.Args())
	}
	if c.onair == "" {
		return fmt.Errorf("bench %s: -onair is required (run make build, then -onair bin/onair)", c.name)
	}
	abs, err := filepath.Abs(c.onair)
	if err != nil {
		return fmt.Errorf("bench %s: %w", c.name, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("bench %s: onair binary: %w (run make build first)", c.name, err)
	}
	c.onair = abs
	return nil
}

// recordConfig is the `record` benchmark's command line.
type recordConfig struct {
	rigFlags
	streams       int
	warmup        time.Duration
	window        time.Duration
	outage        time.Duration
	drainTimeout  time.Duration
	replayRuns    int
	replayPublish time.Duration
}

func parseRecordFlags(args []string, root string, stderr io.Writer) (recordConfig, error) {
	fs := flag.NewFlagSet("bench record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := recordConfig{rigFlags: rigFlags{name: "record"}}
	c.register(fs, root)
	fs.IntVar(&c.streams, "streams", 10, "live streams (looping ffmpeg -re -c copy publishers) in the CPU, memory and outage phases")
	fs.DurationVar(&c.warmup, "warmup", 10*time.Second, "CPU and memory: publishing before the window")
	fs.DurationVar(&c.window, "window", 20*time.Second, "CPU and memory: sampling window, with recording off and then on")
	fs.DurationVar(&c.outage, "outage", 60*time.Second, "how long MinIO is down while the streams record")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 2*time.Minute, "longest wait, after MinIO is back, for the spooled backlog to be uploaded")
	fs.IntVar(&c.replayRuns, "replay-runs", 5, "publisher-left-to-replay runs")
	fs.DurationVar(&c.replayPublish, "replay-publish", 6*time.Second, "how long each replay run publishes")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := c.check(fs); err != nil {
		return c, err
	}
	if c.streams < 1 || c.replayRuns < 1 || c.warmup < 0 || c.window < time.Second || c.outage < time.Second ||
		c.drainTimeout < time.Second || c.replayPublish < 2*time.Second {
		return c, fmt.Errorf("bench record: counts must be positive, the window and outage at least 1 s, -replay-publish at least 2 s")
	}
	return c, nil
}
