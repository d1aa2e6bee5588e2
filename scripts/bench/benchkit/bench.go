// Package benchkit is what the benchmarks of scripts/bench share: the command line every
// one takes, the header and the writing of its results (JSON and its section of
// BENCHMARKS.md), processes and their CPU and memory, the servers (onair, FerretDB,
// MinIO), the benchmark input and its publishers, and an LL-HLS player.
package benchkit

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// MB is a megabyte (MiB), the unit of the memory figures.
const MB = 1 << 20

// Env is what main hands a benchmark.
type Env struct {
	Name           string // the subcommand
	Root           string // the repository
	Command        string // as recorded with the results
	Stdout, Stderr io.Writer
}

// Head is what every result file starts with. Benchmarks embed it in their results.
type Head struct {
	Command  string   `json:"command"`
	Started  string   `json:"started"`
	Finished string   `json:"finished"`
	Machine  Machine  `json:"machine"`
	Onair    Binary   `json:"onair"`
	Errors   []string `json:"errors,omitempty"`
}

// Run is one run of a benchmark: its common flags, its scratch directory with a copy of
// the onair binary (so that a `make build` meanwhile cannot change what is measured), its
// log and the errors of failed measurements.
type Run struct {
	Env
	Flags    *flag.FlagSet
	Out      string // directory for the input file and <name>.json
	Markdown string // BENCHMARKS.md
	Write    bool
	Tmp      string
	Bin      string // the copy of the onair binary under test
	// Partial keeps BENCHMARKS.md unchanged (only some phases or servers ran).
	Partial bool
	head    *Head
	onair   string
}

// NewRun registers the flags every benchmark takes; the caller adds its own, then calls
// Start.
func NewRun(env Env) *Run {
	r := &Run{Env: env, Flags: flag.NewFlagSet("bench "+env.Name, flag.ContinueOnError)}
	r.Flags.SetOutput(env.Stderr)
	r.Flags.StringVar(&r.onair, "onair", "", "onair binary to measure (make build writes bin/onair)")
	r.Flags.StringVar(&r.Out, "out", filepath.Join(env.Root, ".artifacts", "bench"), "directory for the input file and "+env.Name+".json")
	r.Flags.StringVar(&r.Markdown, "benchmarks", filepath.Join(env.Root, "BENCHMARKS.md"), "Markdown file whose bench:"+env.Name+" section is rewritten")
	r.Flags.BoolVar(&r.Write, "write", true, "rewrite the bench:"+env.Name+" section (only after a run without errors)")
	return r
}

// Start parses args, fills head and prepares the scratch directory; Close removes it.
func (r *Run) Start(ctx context.Context, args []string, head *Head) error {
	if err := r.Flags.Parse(args); err != nil {
		return err
	}
	if r.Flags.NArg() > 0 {
		return fmt.Errorf("bench %s: unexpected arguments %q", r.Name, r.Flags.Args())
	}
	if r.onair == "" {
		return fmt.Errorf("bench %s: -onair is required (run make build, then -onair bin/onair)", r.Name)
	}
	src, err := filepath.Abs(r.onair)
	if err == nil {
		err = os.MkdirAll(r.Out, 0o755)
	}
	if err == nil {
		r.Tmp, err = os.MkdirTemp("", "onair-bench-"+r.Name+"-")
	}
	if err != nil {
		return fmt.Errorf("bench %s: %w", r.Name, err)
	}
	r.head, r.Bin = head, filepath.Join(r.Tmp, "onair")
	*head = Head{Command: r.Command, Started: time.Now().UTC().Format(time.RFC3339), Machine: DescribeMachine(ctx)}
	if head.Onair, err = copyBinary(src, r.Bin); err != nil {
		r.Close()
		return fmt.Errorf("bench %s: onair binary (run make build first): %w", r.Name, err)
	}
	head.Onair.Path, _ = filepath.Rel(r.Root, src)
	return nil
}

// Main is a benchmark's whole run when measure needs nothing more than the run: Start,
// measure (its error one of the run's failures), Finish.
func (r *Run) Main(ctx context.Context, args []string, head *Head, results any, measure func() error, section func() string) error {
	if err := r.Start(ctx, args, head); err != nil {
		return err
	}
	defer r.Close()
	if err := measure(); err != nil {
		r.Fail(err)
	}
	return r.Finish(ctx, results, section)
}

// Close removes the scratch directory.
func (r *Run) Close() { _ = os.RemoveAll(r.Tmp) }

// Logf writes a progress line.
func (r *Run) Logf(format string, a ...any) {
	fmt.Fprintf(r.Stderr, "%s bench %s: %s\n", time.Now().Format("15:04:05"), r.Name, fmt.Sprintf(format, a...))
}

// Fail records a failed measurement; the run goes on with the next one.
func (r *Run) Fail(err error) {
	r.Logf("error: %v", err)
	r.head.Errors = append(r.head.Errors, err.Error())
}

// Finish prints section, writes results as <out>/<name>.json and, after a run without
// errors, rewrites the benchmark's section of BENCHMARKS.md. section gets the finished
// head, to render it.
func (r *Run) Finish(ctx context.Context, results any, section func() string) error {
	if err := ctx.Err(); err != nil {
		r.Fail(fmt.Errorf("stopped: %w", err))
	}
	r.head.Machine.LoadEnd = loadAvg()
	r.head.Finished = time.Now().UTC().Format(time.RFC3339)
	text := section()
	fmt.Fprintln(r.Stdout, text)
	b, err := json.MarshalIndent(results, "", "  ")
	path := filepath.Join(r.Out, r.Name+".json")
	if err == nil {
		err = os.WriteFile(path, append(b, '\n'), 0o644)
	}
	if err != nil {
		return fmt.Errorf("bench %s: %w", r.Name, err)
	}
	r.Logf("raw results: %s", path)
	switch {
	case len(r.head.Errors) > 0:
		return fmt.Errorf("bench %s: %d measurement(s) failed; %s left unchanged", r.Name, len(r.head.Errors), r.Markdown)
	case r.Partial || !r.Write:
		r.Logf("%s left unchanged", r.Markdown)
		return nil
	}
	if err := updateSection(r.Markdown, r.Name, text); err != nil {
		return err
	}
	r.Logf("wrote the bench:%s section of %s", r.Name, r.Markdown)
	return nil
}

// Section starts a benchmark's section: title, command, machine, binary, errors.
func (h *Head) Section(title string) *strings.Builder {
	var b strings.Builder
	m := h.Machine
	fmt.Fprintf(&b, "## %s\n\nProduced by `%s` on %s (finished %s).\n\n", title, h.Command, h.Started, h.Finished)
	fmt.Fprintf(&b, "Machine: %d cores (`nproc`), %s, Linux %s (`uname -r`), %s. Load average (1, 5, 15 min) %s at the start, "+
		"%s at the end; *machine busy* is the whole machine's CPU use during a measurement, in %% of all cores, the load's own included.\n\n",
		m.CPUs, m.CPUModel, m.Kernel, strings.Join(slices.DeleteFunc([]string{m.Go, m.FFmpeg, m.Peers}, func(s string) bool { return s == "" }), ", "),
		m.LoadStart, m.LoadEnd)
	fmt.Fprintf(&b, "onair binary: `%s`, %.1f MB, modified %s, sha256 %.16s….\n\n", h.Onair.Path, float64(h.Onair.Bytes)/MB, h.Onair.Modified, h.Onair.SHA256)
	if len(h.Errors) > 0 {
		b.WriteString("**This run had errors; the figures they affect are missing:**\n\n")
		for _, e := range h.Errors {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
		b.WriteString("\n")
	}
	return &b
}

// Binary identifies the onair binary that was measured.
type Binary struct {
	Path     string `json:"path"`
	Bytes    int64  `json:"bytes"`
	Modified string `json:"modified"`
	SHA256   string `json:"sha256"`
}

func copyBinary(src, dst string) (Binary, error) {
	b, err := os.ReadFile(src) // about 40 MB
	st, serr := os.Stat(src)
	if err = cmp.Or(err, serr); err != nil {
		return Binary{}, err
	}
	sum := sha256.Sum256(b)
	return Binary{Bytes: st.Size(), Modified: st.ModTime().UTC().Format(time.RFC3339), SHA256: hex.EncodeToString(sum[:])}, os.WriteFile(dst, b, 0o755)
}

// Machine says what the numbers were measured on.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	FFmpeg    string `json:"ffmpeg"`
	Peers     string `json:"peers,omitempty"` // versions of the peers a benchmark runs
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

// DescribeMachine describes this machine.
func DescribeMachine(ctx context.Context) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	m.FFmpeg, _, _ = strings.Cut(FirstLine(ctx, "ffmpeg", "-hide_banner", "-version"), " Copyright")
	return m
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// updateSection replaces what lies between <!-- bench:name:start --> and
// <!-- bench:name:end --> in the Markdown file at path with body, appending the section
// when it is missing.
func updateSection(path, name, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("update %s: %w", path, err)
	}
	out, err := ReplaceSection(string(old), name, body)
	if err == nil {
		err = os.WriteFile(path, []byte(out), 0o644)
	}
	if err != nil {
		return fmt.Errorf("update %s: %w", path, err)
	}
	return nil
}

// ReplaceSection is updateSection on a string.
func ReplaceSection(doc, name, body string) (string, error) {
	start, end := "<!-- bench:"+name+":start -->", "<!-- bench:"+name+":end -->"
	section := start + "\n" + strings.TrimSpace(body) + "\n" + end
	i, j := strings.Index(doc, start), strings.Index(doc, end)
	switch {
	case i < 0 && j < 0:
		return strings.TrimLeft(strings.TrimRight(doc, "\n")+"\n\n", "\n") + section + "\n", nil
	case i < 0 || j < i:
		return "", fmt.Errorf("the markers of section %q are broken", name)
	}
	return doc[:i] + section + doc[j+len(end):], nil
}

// Table renders a Markdown table.
func Table(header []string, rows ...[]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|" + strings.Repeat(" --- |", len(header)) + "\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

// Row is one row of a table with a column per item: its label, and each item's cell.
func Row[T any](label string, cell func(T) string) func([]T) []string {
	return func(items []T) []string {
		out := []string{label}
		for _, it := range items {
			out = append(out, cell(it))
		}
		return out
	}
}

// Rows renders rows over items, for Table.
func Rows[T any](items []T, rows ...func([]T) []string) [][]string {
	out := make([][]string, len(rows))
	for i, row := range rows {
		out[i] = row(items)
	}
	return out
}

// NotMeasured stands for a figure of a measurement that failed.
const NotMeasured = "n/a"

// F formats v with decimals, "n/a" when it was not measured.
func F(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return NotMeasured
	}
	return fmt.Sprintf("%.*f", decimals, v)
}

// X formats a ratio.
func X(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return NotMeasured
	}
	return fmt.Sprintf("%.2fx", v)
}

// Join formats xs with decimals, comma-separated.
func Join(xs []float64, decimals int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = F(x, decimals)
	}
	return strings.Join(s, ", ")
}

// Verdict says whether a target was met.
func Verdict(ok, measured bool) string {
	switch {
	case !measured:
		return "not measured"
	case ok:
		return "met"
	}
	return "**not met**"
}

// Percentile is the p-th percentile (0–100) of xs by the nearest-rank method, NaN for
// no values.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	return s[min(max(int(math.Ceil(p/100*float64(len(s)))), 1), len(s))-1]
}

func Median(xs []float64) float64 { return Percentile(xs, 50) }

// Ratio is a / b, NaN when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// SleepUntil waits until t or until ctx ends (then returning its error).
func SleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Tail is the end of s, at most n bytes.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
