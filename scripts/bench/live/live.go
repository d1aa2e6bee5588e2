package live

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// liveRun is one run of `bench live`: its configuration, the input and what it measured.
type liveRun struct {
	cfg   liveConfig
	kinds []oldkit.ServerKind
	tmp   string // scratch directory for the servers' files, removed at the end
	input string
	tags  []oldkit.FlvTag
	res   *liveResults
	oldkit.RunLog
}

// runLive is `bench live`: onair and nginx-rtmp side by side on the same input.
func RunLive(ctx context.Context, args []string, root, command string, stdout, stderr io.Writer) error {
	cfg, err := parseLiveFlags(args, root, stderr)
	if err != nil {
		return err
	}
	r := &liveRun{
		cfg:   cfg,
		input: filepath.Join(cfg.outDir, "input-720p30.flv"),
		res:   &liveResults{Command: command, Started: time.Now().Format(time.RFC3339), Machine: oldkit.DescribeMachine(ctx)},
	}
	r.RunLog = oldkit.RunLog{Name: "live", Out: stderr, Errs: &r.res.Errors}
	if err := r.prepareInput(ctx, root); err != nil {
		return err
	}
	if r.tmp, err = os.MkdirTemp("", "onair-bench-"); err != nil {
		return fmt.Errorf("bench live: %w", err)
	}
	defer os.RemoveAll(r.tmp)
	// A copy, so that a `make build` meanwhile cannot change the binary under test.
	onair := filepath.Join(r.tmp, "onair")
	if r.res.Onair, err = oldkit.CopyBinary(cfg.onair, onair); err != nil {
		return fmt.Errorf("bench live: %w", err)
	}
	r.res.Onair.Path, _ = filepath.Rel(root, cfg.onair)
	r.kinds = []oldkit.ServerKind{onairKind(onair), nginxKind()}

	if cfg.phases["play"] {
		r.play(ctx)
	}
	if cfg.phases["load"] {
		r.load(ctx)
	}
	if cfg.phases["viewers"] {
		r.viewers(ctx)
	}
	if err := ctx.Err(); err != nil {
		r.Fail(fmt.Errorf("bench live: stopped: %w", err))
	}
	return r.write(stdout)
}

// prepareInput encodes the input file unless it exists, and reads it for the stamping
// publisher.
func (r *liveRun) prepareInput(ctx context.Context, root string) error {
	r.Logf("input %s", r.input)
	encode, err := oldkit.EnsureInput(ctx, r.input)
	if err != nil {
		return err
	}
	f, err := os.Open(r.input)
	if err != nil {
		return fmt.Errorf("bench live: %w", err)
	}
	defer f.Close()
	if r.tags, err = oldkit.ReadFLVTags(f); err != nil {
		return fmt.Errorf("bench live: %s: %w", r.input, err)
	}
	in := &r.res.Input
	in.Encode = encode
	in.File, _ = filepath.Rel(root, r.input)
	in.Seconds = float64(r.tags[len(r.tags)-1].Timestamp-r.tags[0].Timestamp) / 1000
	for _, t := range r.tags {
		in.Bytes += int64(len(t.Data))
	}
	in.BitrateKbps = float64(in.Bytes) * 8 / 1000 / in.Seconds
	return nil
}

// play measures latency, then the first playable frame (runs interleaved between the
// servers, so that both meet the same disturbances), on one instance of each server.
func (r *liveRun) play(ctx context.Context) {
	names := []string{"lat"}
	for i := range r.cfg.firstRuns {
		names = append(names, "ff"+strconv.Itoa(i))
	}
	servers := make([]oldkit.MediaServer, len(r.kinds))
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.Stop()
			}
		}
	}()
	for i, k := range r.kinds {
		dir, err := os.MkdirTemp(r.tmp, k.Name+"-play-")
		if err == nil {
			servers[i], err = k.Start(ctx, dir, names)
		}
		if err != nil {
			r.Fail(fmt.Errorf("bench live: latency and first frame: %w", err))
			return
		}
	}

	for i, k := range r.kinds {
		r.Logf("latency: %s, %s warm-up + %s window", k.Name, r.cfg.warmup, r.cfg.window)
		l, err := measureLatency(ctx, k.Name, servers[i], "lat", r.tags, r.cfg.warmup, r.cfg.window)
		if err != nil {
			r.Fail(err)
			continue
		}
		r.Logf("  median %.0f ms, p95 %.0f ms over %d/%d frames", l.MedianMS, l.P95MS, l.Frames, l.FramesSent)
		r.res.Latency = append(r.res.Latency, l)
	}
	ff := make([]firstFrameResult, len(r.kinds))
	for run := range r.cfg.firstRuns {
		for i, k := range r.kinds {
			d, err := measureFirstFrame(ctx, k.Name, servers[i], "ff"+strconv.Itoa(run), r.tags)
			if err != nil {
				r.Fail(err)
				continue
			}
			r.Logf("first frame: %s run %d: %d ms", k.Name, run+1, d.Milliseconds())
			ff[i].Server = k.Name
			ff[i].RunsMS = append(ff[i].RunsMS, float64(d)/float64(time.Millisecond))
		}
	}
	for _, f := range ff {
		if len(f.RunsMS) > 0 {
			f.MedianMS = oldkit.Median(f.RunsMS)
			r.res.FirstFrame = append(r.res.FirstFrame, f)
		}
	}
}

// load measures CPU and memory at each publisher count, onair then nginx-rtmp, each on
// a fresh server; at the largest count it follows memory until the DVR window is full.
func (r *liveRun) load(ctx context.Context) {
	most := slices.Max(r.cfg.publishers)
	for _, n := range r.cfg.publishers {
		for _, k := range r.kinds {
			if ctx.Err() != nil {
				return
			}
			opts := loadOptions{input: r.input, warmup: r.cfg.loadWarmup, window: r.cfg.loadWindow, stagger: 25 * time.Millisecond}
			if n == most {
				opts.fullDVR = r.cfg.fullDVR
			}
			r.Logf("CPU and memory: %s with %d publishers", k.Name, n)
			l, err := measureLoad(ctx, k, r.tmp, n, opts)
			if err != nil {
				r.Fail(err)
				continue
			}
			r.Logf("  CPU %.1f %% of a core (%.2f %% per stream), RSS %.1f MB (%.2f MB per stream), %d/%d live",
				l.CPUPercent, l.CPUPercentPerStream, l.RSSMeanMB, l.RSSPerStreamMB, l.Live, n)
			if f := l.FullDVR; f != nil {
				r.Logf("  after %.0f s: RSS %.1f MB, peak %.2f MB per stream, %.0f MB on disk", f.AfterS, f.RSSMB, f.RSSMaxPerStreamMB, f.DiskMB)
			}
			r.res.Load = append(r.res.Load, l)
		}
	}
}

// viewers loads each server's HLS with many viewers of one stream.
func (r *liveRun) viewers(ctx context.Context) {
	for _, k := range r.kinds {
		if ctx.Err() != nil {
			return
		}
		r.Logf("viewers: %s, wrk -c%d for %s", k.Name, r.cfg.viewers.Connections, r.cfg.viewers.Duration)
		v, err := measureViewers(ctx, k, r.tmp, viewerOptions{input: r.input, warmup: 8 * time.Second, wrk: r.cfg.viewers})
		if err != nil {
			r.Fail(err)
			continue
		}
		r.Logf("  %.0f requests/s, %.1f s of server CPU, %.0f requests per CPU second", v.RPS, v.CPUSeconds, v.RequestsPerCPUS)
		r.res.Viewers = append(r.res.Viewers, v)
	}
}

// write prints the summary, saves the raw results and, after a complete run without
// errors, rewrites the bench:live section of BENCHMARKS.md.
func (r *liveRun) write(stdout io.Writer) error {
	r.res.Machine.LoadEnd = oldkit.LoadAvg()
	r.res.Finished = time.Now().Format(time.RFC3339)
	section := liveSection(r.res)
	fmt.Fprintln(stdout, section)
	jsonPath := filepath.Join(r.cfg.outDir, "live.json")
	b, err := json.MarshalIndent(r.res, "", "  ")
	if err != nil {
		return fmt.Errorf("bench live: %w", err)
	}
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench live: %w", err)
	}
	r.Logf("raw results: %s", jsonPath)
	switch {
	case len(r.res.Errors) > 0:
		return fmt.Errorf("bench live: %d measurement(s) failed; %s left unchanged", len(r.res.Errors), r.cfg.markdown)
	case len(r.cfg.phases) < len(livePhases()):
		r.Logf("only some phases ran: %s left unchanged", r.cfg.markdown)
	case r.cfg.writeMD:
		if err := oldkit.UpdateSection(r.cfg.markdown, "live", oldkit.BenchmarksIntro, section); err != nil {
			return err
		}
		r.Logf("wrote the bench:live section of %s", r.cfg.markdown)
	}
	return nil
}
