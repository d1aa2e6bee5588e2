package oldkit

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// benchmarksIntro starts BENCHMARKS.md when it does not exist yet.
const BenchmarksIntro = `# Benchmarks

` + "`make bench`" + ` builds onair, runs the Go micro-benchmarks (` + "`go test -bench`" + `) and then the
load benchmarks of ` + "`scripts/bench`" + `, which start the real onair binary and its peers on this
machine's loopback, drive them with ffmpeg, wrk and the benchmark's own RTMP publisher and
HLS player, and rewrite the sections below (each between its ` + "`bench:<name>`" + ` markers; text
outside the markers is kept). Raw figures go to ` + "`.artifacts/bench/<name>.json`" + `.

How to read them: every target is a ratio to a peer measured in the same run, on the same
machine and the same input, written *onair / peer*. For latency, time, CPU and memory,
lower is better (0.5x = half the peer's); for throughput, higher is better. Absolute
figures depend on the machine and on whatever else it was doing, so compare ratios, and
compare absolute numbers only within one section. Each section names its machine (` + "`nproc`" + `,
` + "`uname -r`" + `, Go version), the date and the exact command, and says how busy the machine
was while measuring.
`

// updateSection replaces what lies between <!-- bench:name:start --> and
// <!-- bench:name:end --> in the Markdown file at path with body, appending the section
// (and creating the file with intro) when it is missing.
func UpdateSection(path, name, intro, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("update %s: %w", path, err)
	}
	doc := string(old)
	if doc == "" {
		doc = intro
	}
	out, err := replaceSection(doc, name, body)
	if err != nil {
		return fmt.Errorf("update %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		return fmt.Errorf("update %s: %w", path, err)
	}
	return nil
}

// replaceSection is updateSection on a string.
func replaceSection(doc, name, body string) (string, error) {
	start := "<!-- bench:" + name + ":start -->"
	end := "<!-- bench:" + name + ":end -->"
	section := start + "\n" + strings.TrimSpace(body) + "\n" + end
	i := strings.Index(doc, start)
	j := strings.Index(doc, end)
	switch {
	case i < 0 && j < 0:
		return strings.TrimRight(doc, "\n") + "\n\n" + section + "\n", nil
	case i < 0 || j < i:
		return "", fmt.Errorf("the markers of section %q are broken", name)
	}
	return doc[:i] + section + doc[j+len(end):], nil
}
