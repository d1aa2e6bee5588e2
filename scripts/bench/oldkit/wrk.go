package oldkit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// wrkOptions describe an HTTP load: Connections viewers on Threads threads for Duration,
// each connection requesting Paths in turn, with Headers on every request (a player's
// cookie).
type WrkOptions struct {
	Threads     int
	Connections int
	Duration    time.Duration
	Paths       []string
	Headers     map[string]string
}

// wrkResult is what wrk reported.
type wrkResult struct {
	Requests    int64
	Seconds     float64
	RPS         float64
	Non2xx      int64
	SocketErrs  string
	LatencyP50  string
	LatencyP99  string
	BytesPerSec string
}

// wrkScript cycles every connection over paths, sending headers with each request.
func wrkScript(paths []string, headers map[string]string) string {
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = strconv.Quote(p)
	}
	var set strings.Builder
	for _, k := range slices.Sorted(maps.Keys(headers)) {
		set.WriteString("wrk.headers[" + strconv.Quote(k) + "] = " + strconv.Quote(headers[k]) + "\n")
	}
	return set.String() + `local paths = {` + strings.Join(quoted, ", ") + `}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
`
}

// wrkArgs is the command line (after "wrk") for opts against base with script.
func WrkArgs(opts WrkOptions, script, base string) []string {
	return []string{"-t" + strconv.Itoa(opts.Threads), "-c" + strconv.Itoa(opts.Connections),
		"-d" + strconv.Itoa(int(opts.Duration.Seconds())) + "s", "--latency", "-s", script, base}
}

// runWrk runs wrk against base (http://host:port) and parses its report.
func RunWrk(ctx context.Context, dir, base string, opts WrkOptions) (wrkResult, error) {
	script := filepath.Join(dir, "paths.lua")
	if err := os.WriteFile(script, []byte(wrkScript(opts.Paths, opts.Headers)), 0o644); err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", WrkArgs(opts, script, base)...)
	cmd.SysProcAttr = ChildAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	return parseWrk(string(out))
}

// parseWrk reads the summary wrk prints.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := regexp.MustCompile(`(\d+) requests in ([\d.]+)(ms|s|m),`).FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("wrk: no request count in its output:\n" + out)
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	r.Seconds, _ = strconv.ParseFloat(m[2], 64)
	switch m[3] {
	case "ms":
		r.Seconds /= 1000
	case "m":
		r.Seconds *= 60
	}
	if m := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindStringSubmatch(out); m != nil {
		r.RPS, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := regexp.MustCompile(`Socket errors: ([^\n]+)`).FindStringSubmatch(out); m != nil {
		r.SocketErrs = strings.TrimSpace(m[1])
	}
	if m := regexp.MustCompile(`(?m)^\s+50%\s+(\S+)`).FindStringSubmatch(out); m != nil {
		r.LatencyP50 = m[1]
	}
	if m := regexp.MustCompile(`(?m)^\s+99%\s+(\S+)`).FindStringSubmatch(out); m != nil {
		r.LatencyP99 = m[1]
	}
	if m := regexp.MustCompile(`Transfer/sec:\s+(\S+)`).FindStringSubmatch(out); m != nil {
		r.BytesPerSec = m[1]
	}
	return r, nil
}
