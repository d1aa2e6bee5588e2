package oldkit

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

// rigFlags are the flags every benchmark on the rig (record, cluster-hls, web) takes.
type RigFlags struct {
	Name     string // the subcommand
	Onair    string
	OutDir   string
	markdown string
	writeMD  bool
}

func (c *RigFlags) Register(fs *flag.FlagSet, root string) {
	fs.StringVar(&c.Onair, "onair", "", "onair binary to measure (make build writes bin/onair)")
	fs.StringVar(&c.OutDir, "out", filepath.Join(root, ".artifacts", "bench"), "directory for the input file and "+c.Name+".json")
	fs.StringVar(&c.markdown, "benchmarks", filepath.Join(root, "BENCHMARKS.md"), "Markdown file whose bench:"+c.Name+" section is rewritten")
	fs.BoolVar(&c.writeMD, "write", true, "rewrite the bench:"+c.Name+" section of -benchmarks (only after a run without errors)")
}

// check validates the flags after parsing and makes the binary's path absolute.
func (c *RigFlags) Check(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("bench %s: unexpected arguments %q", c.Name, fs.Args())
	}
	if c.Onair == "" {
		return fmt.Errorf("bench %s: -onair is required (run make build, then -onair bin/onair)", c.Name)
	}
	abs, err := filepath.Abs(c.Onair)
	if err != nil {
		return fmt.Errorf("bench %s: %w", c.Name, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("bench %s: onair binary: %w (run make build first)", c.Name, err)
	}
	c.Onair = abs
	return nil
}
