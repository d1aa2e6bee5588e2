package live

import (
	"context"
	"fmt"
	"onair/scripts/bench/oldkit"
	"os"
	"strconv"
	"time"
)

// loadOptions describe the publisher load phase.
type loadOptions struct {
	input  string
	warmup time.Duration
	window time.Duration
	// stagger spaces the publishers' starts, so that their key frames do not all
	// arrive in the same instant.
	stagger time.Duration
	// fullDVR, when set, goes on sampling after the window until this long after the
	// last publisher started, so that the DVR window (onair) or playlist (nginx-rtmp)
	// is full, and records the memory then.
	fullDVR time.Duration
}

// measureLoad starts a fresh server, measures its idle RSS, starts n looping ffmpeg
// publishers and samples the server's CPU and RSS over the window after the warm-up.
func measureLoad(ctx context.Context, kind oldkit.ServerKind, tmp string, n int, opts loadOptions) (loadResult, error) {
	res := loadResult{Server: kind.Name, Publishers: n, WarmupS: opts.warmup.Seconds(), WindowS: opts.window.Seconds()}
	dir, err := os.MkdirTemp(tmp, kind.Name+"-load-")
	if err != nil {
		return res, fmt.Errorf("load: %w", err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = "s" + strconv.Itoa(i)
	}
	srv, err := kind.Start(ctx, dir, names)
	if err != nil {
		return res, fmt.Errorf("load %s: %w", kind.Name, err)
	}
	defer srv.Stop()
	if err := oldkit.SleepUntil(ctx, time.Now().Add(time.Second)); err != nil {
		return res, err
	}
	_, idle, err := oldkit.GroupStat(srv.Pids())
	if err != nil {
		return res, fmt.Errorf("load %s: idle RSS: %w", kind.Name, err)
	}
	res.RSSIdleMB = float64(idle) / oldkit.Mb

	pubs := make([]*oldkit.Process, 0, n)
	defer func() { oldkit.StopAll(pubs) }()
	for _, name := range names {
		p, err := oldkit.StartFFmpegPublisher(opts.input, oldkit.RtmpURL(srv.Target(name)))
		if err != nil {
			return res, fmt.Errorf("load %s: %w", kind.Name, err)
		}
		pubs = append(pubs, p)
		if err := oldkit.SleepUntil(ctx, time.Now().Add(opts.stagger)); err != nil {
			return res, err
		}
	}
	allStarted := time.Now()
	if err := oldkit.SleepUntil(ctx, time.Now().Add(opts.warmup)); err != nil {
		return res, err
	}
	if err := checkRunning(srv, pubs); err != nil {
		return res, fmt.Errorf("load %s with %d publishers: %w", kind.Name, n, err)
	}
	ffPids := make([]int, len(pubs))
	for i, p := range pubs {
		ffPids[i] = p.Pid()
	}
	pids := srv.Pids()
	ff0, err := oldkit.CpuSeconds(ffPids)
	if err != nil {
		return res, fmt.Errorf("load: ffmpeg CPU: %w", err)
	}
	busy0, _ := oldkit.ReadCPUTimes()
	u, err := oldkit.MeasureUsage(ctx, pids, opts.window, time.Second)
	if err != nil {
		return res, fmt.Errorf("load %s: %w", kind.Name, err)
	}
	res.MachineBusy = oldkit.BusySince(busy0)
	if err := srv.Alive(); err != nil {
		return res, fmt.Errorf("load %s with %d publishers: %w", kind.Name, n, err)
	}
	ff1, err := oldkit.CpuSeconds(ffPids) // of exited publishers too, until they are reaped
	if err != nil {
		return res, fmt.Errorf("load: ffmpeg CPU: %w", err)
	}
	res.Dropped, res.DropDetail = dropped(srv, pubs)
	res.CPUPercent = u.CPUPercent
	res.CPUPercentPerStream = u.CPUPercent / float64(n)
	res.RSSMeanMB = float64(u.RSSMean) / oldkit.Mb
	res.RSSMaxMB = float64(u.RSSMax) / oldkit.Mb
	res.RSSPerStreamMB = (float64(u.RSSMean) - float64(idle)) / oldkit.Mb / float64(n)
	res.RSSGrowthMBPerMin = (float64(u.RSSLast) - float64(u.RSSFirst)) / oldkit.Mb / u.Wall.Minutes()
	res.FFmpegCPUPercent = 100 * (ff1 - ff0) / u.Wall.Seconds()

	client := oldkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	for _, name := range names {
		if srv.StreamReady(ctx, client, name) {
			res.Live++
		}
	}
	if disk, err := oldkit.DirSize(srv.DataDir()); err == nil {
		res.DiskMB = float64(disk) / oldkit.Mb
	}

	if rest := time.Until(allStarted.Add(opts.fullDVR)); opts.fullDVR > 0 && rest > 0 {
		full, err := oldkit.MeasureUsage(ctx, pids, rest, time.Second)
		if err != nil {
			return res, fmt.Errorf("load %s with a full DVR window: %w", kind.Name, err)
		}
		if err := srv.Alive(); err != nil {
			return res, fmt.Errorf("load %s with a full DVR window: %w", kind.Name, err)
		}
		res.Dropped, res.DropDetail = dropped(srv, pubs)
		res.FullDVR = &fullDVRResult{
			AfterS:            time.Since(allStarted).Seconds(),
			RSSMB:             float64(full.RSSLast) / oldkit.Mb,
			RSSMaxMB:          float64(full.RSSMax) / oldkit.Mb,
			RSSPerStreamMB:    (float64(full.RSSLast) - float64(idle)) / oldkit.Mb / float64(n),
			RSSMaxPerStreamMB: (float64(full.RSSMax) - float64(idle)) / oldkit.Mb / float64(n),
			CPUPercent:        full.CPUPercent,
		}
		if disk, err := oldkit.DirSize(srv.DataDir()); err == nil {
			res.FullDVR.DiskMB = float64(disk) / oldkit.Mb
		}
	}
	return res, nil
}

// checkRunning fails when the server or a publisher has exited.
func checkRunning(srv oldkit.MediaServer, pubs []*oldkit.Process) error {
	if err := srv.Alive(); err != nil {
		return err
	}
	for _, p := range pubs {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("a publisher exited (%v): %s; server log: %s", err, p.Output(), oldkit.Tail(srv.Logs(), 1500))
		}
	}
	return nil
}

// dropped counts the publishers that have exited (the server closed their connection)
// and describes the first one, with the end of the server's log.
func dropped(srv oldkit.MediaServer, pubs []*oldkit.Process) (int, string) {
	n, detail := 0, ""
	for _, p := range pubs {
		if exited, err := p.Exited(); exited {
			if n == 0 {
				detail = fmt.Sprintf("publisher exited (%v): %s; server log: %s", err, p.Output(), oldkit.Tail(srv.Logs(), 1500))
			}
			n++
		}
	}
	return n, detail
}
