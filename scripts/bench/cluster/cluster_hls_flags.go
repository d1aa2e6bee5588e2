package cluster

import (
	"flag"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"time"
)

// clusterHLSConfig is the `cluster-hls` benchmark's command line.
type clusterHLSConfig struct {
	oldkit.RigFlags
	rounds    int
	warmup    time.Duration
	recording bool
	wrk       oldkit.WrkOptions
}

func parseClusterHLSFlags(args []string, root string, stderr io.Writer) (clusterHLSConfig, error) {
	fs := flag.NewFlagSet("bench cluster-hls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := clusterHLSConfig{RigFlags: oldkit.RigFlags{Name: "cluster-hls"}}
	c.Register(fs, root)
	fs.IntVar(&c.rounds, "rounds", 2, "rounds of (load through the origin A, load through B), alternating so that both meet the same disturbances")
	fs.DurationVar(&c.warmup, "warmup", 8*time.Second, "publishing before the first load, so that segments exist")
	fs.BoolVar(&c.recording, "recording", false, "keep the room's recording on (off by default, so that S3 uploads stay out of the CPU figures)")
	fs.IntVar(&c.wrk.Connections, "viewers", 100, "concurrent wrk connections")
	fs.IntVar(&c.wrk.Threads, "viewer-threads", 2, "wrk threads")
	fs.DurationVar(&c.wrk.Duration, "viewer-duration", 15*time.Second, "wrk duration of each load")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := c.Check(fs); err != nil {
		return c, err
	}
	if c.rounds < 1 || c.wrk.Connections < 1 || c.wrk.Threads < 1 || c.wrk.Duration < time.Second || c.warmup < 0 {
		return c, fmt.Errorf("bench cluster-hls: rounds, viewers and threads must be positive, -viewer-duration at least 1 s")
	}
	return c, nil
}
