package record

import (
	"flag"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"time"
)

// recordConfig is the `record` benchmark's command line.
type recordConfig struct {
	oldkit.RigFlags
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
	c := recordConfig{RigFlags: oldkit.RigFlags{Name: "record"}}
	c.Register(fs, root)
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
	if err := c.Check(fs); err != nil {
		return c, err
	}
	if c.streams < 1 || c.replayRuns < 1 || c.warmup < 0 || c.window < time.Second || c.outage < time.Second ||
		c.drainTimeout < time.Second || c.replayPublish < 2*time.Second {
		return c, fmt.Errorf("bench record: counts must be positive, the window and outage at least 1 s, -replay-publish at least 2 s")
	}
	return c, nil
}
