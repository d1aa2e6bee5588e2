package live

import (
	"context"
	"fmt"
	"onair/scripts/bench/benchkit"
	"os"
	"strings"
	"syscall"
	"time"
)

// viewerOptions describe the many-viewers phase.
type viewerOptions struct {
	input  string
	warmup time.Duration // publishing before the load, so that segments exist
	wrk    benchkit.WrkOptions
}

// measureViewers starts a fresh server with one live stream and loads it with wrk: every
// connection alternates between the stream's media playlist and its newest complete
// segment, as viewers of one stream do. It reports requests per second and per second of
// server CPU.
func measureViewers(ctx context.Context, kind benchkit.ServerKind, tmp string, opts viewerOptions) (viewerResult, error) {
	res := viewerResult{Server: kind.Name}
	dir, err := os.MkdirTemp(tmp, kind.Name+"-viewers-")
	if err != nil {
		return res, fmt.Errorf("viewers: %w", err)
	}
	const name = "view"
	srv, err := kind.Start(ctx, dir, []string{name})
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	defer srv.Stop()
	pub, err := benchkit.StartFFmpegPublisher(opts.input, benchkit.RtmpURL(srv.Target(name)))
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	defer pub.Stop(syscall.SIGTERM, 3*time.Second)
	if err := benchkit.SleepUntil(ctx, time.Now().Add(opts.warmup)); err != nil {
		return res, err
	}
	if err := checkRunning(srv, []*benchkit.Process{pub}); err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}

	client := benchkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	paths, err := srv.LoadPaths(ctx, client, name)
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	seg, _, err := benchkit.HttpGet(ctx, client, srv.HTTPBase()+paths[len(paths)-1])
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	res.SegmentBytes = len(seg)
	res.Paths = paths

	pids := srv.Pids()
	base, err := benchkit.MeasureUsage(ctx, pids, 3*time.Second, time.Second)
	if err != nil {
		return res, fmt.Errorf("viewers %s: baseline: %w", kind.Name, err)
	}
	res.BaselineCPU = base.CPUPercent

	wopts := opts.wrk
	wopts.Paths = paths
	cpu0, err := benchkit.CpuSeconds(pids)
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	busy0, _ := benchkit.ReadCPUTimes()
	started := time.Now()
	w, err := benchkit.RunWrk(ctx, dir, srv.HTTPBase(), wopts)
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	wall := time.Since(started)
	res.MachineBusy = benchkit.BusySince(busy0)
	cpu1, err := benchkit.CpuSeconds(pids)
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	if err := checkRunning(srv, []*benchkit.Process{pub}); err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	res.Command = "wrk " + strings.Join(benchkit.WrkArgs(wopts, "paths.lua", srv.HTTPBase()), " ")
	res.Requests, res.Seconds, res.RPS = w.Requests, w.Seconds, w.RPS
	res.Non2xx, res.SocketErrors = w.Non2xx, w.SocketErrs
	res.LatencyP50, res.LatencyP99, res.TransferPerSec = w.LatencyP50, w.LatencyP99, w.BytesPerSec
	res.CPUSeconds = cpu1 - cpu0
	res.CPUPercent = 100 * res.CPUSeconds / wall.Seconds()
	res.RequestsPerCPUS = benchkit.Ratio(float64(w.Requests), res.CPUSeconds)
	if w.Non2xx > 0 || w.SocketErrs != "" {
		return res, fmt.Errorf("viewers %s: %d non-2xx answers, socket errors %q", kind.Name, w.Non2xx, w.SocketErrs)
	}
	return res, nil
}
