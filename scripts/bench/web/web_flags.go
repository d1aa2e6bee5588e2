package web

import (
	"flag"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"time"
)

// webConfig is the `web` benchmark's command line.
type webConfig struct {
	oldkit.RigFlags
	runs   int
	warmup time.Duration
	node   string
}

func parseWebFlags(args []string, root string, stderr io.Writer) (webConfig, error) {
	fs := flag.NewFlagSet("bench web", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := webConfig{RigFlags: oldkit.RigFlags{Name: "web"}}
	c.Register(fs, root)
	fs.IntVar(&c.runs, "runs", 5, "page loads, each in a fresh browser context (bench.mjs --runs)")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "publishing after the room went live, before the first page load")
	fs.StringVar(&c.node, "node", "node", "Node.js binary that runs web/ui/e2e/bench.mjs")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := c.Check(fs); err != nil {
		return c, err
	}
	if c.runs < 1 || c.warmup < 0 {
		return c, fmt.Errorf("bench web: -runs must be positive and -warmup not negative")
	}
	return c, nil
}
