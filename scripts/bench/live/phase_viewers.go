package live

import (
	"context"
	"fmt"
	"onair/scripts/bench/oldkit"
	"os"
	"strings"
	"syscall"
	"time"
)

// viewerOptions describe the many-viewers phase.
type viewerOptions struct {
	input  string
	warmup time.Duration // publishing before the load, so that segments exist
	wrk    oldkit.WrkOptions
}

// measureViewers starts a fresh server with one live stream and loads it with wrk: every
// connection alternates between the stream's media playlist and its newest complete
// segment, as viewers of one stream do. It reports requests per second and per second of
// server CPU.
func measureViewers(ctx context.Context, kind oldkit.ServerKind, tmp string, opts viewerOptions) (viewerResult, error) {
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
	pub, err := oldkit.StartFFmpegPublisher(opts.input, oldkit.RtmpURL(srv.Target(name)))
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	defer pub.Stop(syscall.SIGTERM, 3*time.Second)
	if err := oldkit.SleepUntil(ctx, time.Now().Add(opts.warmup)); err != nil {
		return res, err
	}
	if err := checkRunning(srv, []*oldkit.Process{pub}); err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}

	client := oldkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	paths, err := srv.LoadPaths(ctx, client, name)
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	seg, _, err := oldkit.HttpGet(ctx, client, srv.HTTPBase()+paths[len(paths)-1])
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	res.SegmentBytes = len(seg)
	res.Paths = paths

	pids := srv.Pids()
	base, err := oldkit.MeasureUsage(ctx, pids, 3*time.Second, time.Second)
	if err != nil {
		return res, fmt.Errorf("viewers %s: baseline: %w", kind.Name, err)
	}
	res.BaselineCPU = base.CPUPercent

	wopts := opts.wrk
	wopts.Paths = paths
	cpu0, err := oldkit.CpuSeconds(pids)
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	busy0, _ := oldkit.ReadCPUTimes()
	started := time.Now()
	w, err := oldkit.RunWrk(ctx, dir, srv.HTTPBase(), wopts)
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	wall := time.Since(started)
	res.MachineBusy = oldkit.BusySince(busy0)
	cpu1, err := oldkit.CpuSeconds(pids)
	if err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	if err := checkRunning(srv, []*oldkit.Process{pub}); err != nil {
		return res, fmt.Errorf("viewers %s: %w", kind.Name, err)
	}
	res.Command = "wrk " + strings.Join(oldkit.WrkArgs(wopts, "paths.lua", srv.HTTPBase()), " ")
	res.Requests, res.Seconds, res.RPS = w.Requests, w.Seconds, w.RPS
	res.Non2xx, res.SocketErrors = w.Non2xx, w.SocketErrs
	res.LatencyP50, res.LatencyP99, res.TransferPerSec = w.LatencyP50, w.LatencyP99, w.BytesPerSec
	res.CPUSeconds = cpu1 - cpu0
	res.CPUPercent = 100 * res.CPUSeconds / wall.Seconds()
	res.RequestsPerCPUS = oldkit.Ratio(float64(w.Requests), res.CPUSeconds)
	if w.Non2xx > 0 || w.SocketErrs != "" {
		return res, fmt.Errorf("viewers %s: %d non-2xx answers, socket errors %q", kind.Name, w.Non2xx, w.SocketErrs)
	}
	return res, nil
}
