package record

import (
	"context"
	"fmt"
	"math"
	"onair/scripts/bench/oldkit"
	"time"
)

// measureOutage kills MinIO (its process group) for the configured time while the
// streams go on recording, samples onair's RSS and recording backlog every second, then
// starts MinIO again on the same port and data and waits for the backlog to go up.
func (r *recordRun) measureOutage(ctx context.Context, s *recordStreams) (*outageResult, error) {
	r.Logf("S3 outage: MinIO down for %s", r.cfg.outage)
	client := oldkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	res := &outageResult{}
	var killed time.Time
	sample := func(phase string) (outageSample, error) {
		_, rss, err := oldkit.GroupStat([]int{s.node.Pid()})
		if err != nil {
			return outageSample{}, fmt.Errorf("S3 outage: %w", err)
		}
		sp, err := s.node.Spool(ctx, client)
		if err != nil {
			return outageSample{}, fmt.Errorf("S3 outage: %w", err)
		}
		o := outageSample{AtS: time.Since(killed).Seconds(), Phase: phase, RSSMB: float64(rss) / oldkit.Mb, SpoolMB: sp.Bytes / oldkit.Mb, SpoolParts: sp.Parts}
		res.Samples = append(res.Samples, o)
		return o, nil
	}

	disk0, err := oldkit.DirSize(s.node.RecordingsDir())
	if err != nil {
		return nil, fmt.Errorf("S3 outage: %w", err)
	}
	busy0, _ := oldkit.ReadCPUTimes()
	killed = time.Now()
	r.s3.Kill()
	first, err := sample("down")
	if err != nil {
		return nil, err
	}
	last := first
	if _, err := everySecond(ctx, killed.Add(r.cfg.outage), func() (bool, error) {
		last, err = sample("down")
		return false, err
	}); err != nil {
		return nil, err
	}
	disk1, err := oldkit.DirSize(s.node.RecordingsDir())
	if err != nil {
		return nil, fmt.Errorf("S3 outage: %w", err)
	}
	if err := r.s3.Restart(ctx); err != nil {
		return nil, fmt.Errorf("S3 outage: restart MinIO: %w", err)
	}
	back := time.Now()
	res.DownS = back.Sub(killed).Seconds()
	down := res.Samples
	res.RSSStartMB, res.RSSEndMB = first.RSSMB, last.RSSMB
	res.RSSMinMB, res.RSSMaxMB = sampleRange(down, func(o outageSample) float64 { return o.RSSMB })
	res.RSSEarlyMB, res.RSSLateMB = rssTrend(down, 10)
	res.SpoolStartMB, res.SpoolEndMB = first.SpoolMB, last.SpoolMB
	res.PartsStart, res.PartsEnd = first.SpoolParts, last.SpoolParts
	res.DiskStartMB, res.DiskEndMB = float64(disk0)/oldkit.Mb, float64(disk1)/oldkit.Mb
	r.Logf("  RSS %.1f → %.1f MB (min %.1f, max %.1f; median of the first and last 10 s %.1f → %.1f); spool %.1f → %.1f MB (%.0f → %.0f chunk files); recordings dir %.1f → %.1f MB",
		res.RSSStartMB, res.RSSEndMB, res.RSSMinMB, res.RSSMaxMB, res.RSSEarlyMB, res.RSSLateMB, res.SpoolStartMB, res.SpoolEndMB, res.PartsStart, res.PartsEnd, res.DiskStartMB, res.DiskEndMB)
	if err := s.alive(); err != nil {
		return res, fmt.Errorf("S3 outage: %w", err)
	}

	// Drained: no full chunk waits any more, only the one each recording is writing.
	drained, err := everySecond(ctx, back.Add(r.cfg.drainTimeout), func() (bool, error) {
		o, err := sample("drain")
		if err != nil {
			return false, err
		}
		res.RSSDrainMaxMB = max(res.RSSDrainMaxMB, o.RSSMB)
		if o.SpoolParts > float64(len(r.slugs)) {
			return false, nil
		}
		res.DrainS = time.Since(back).Seconds()
		return true, nil
	})
	res.MachineBusy = oldkit.BusySince(busy0)
	if err != nil {
		return res, err
	}
	if !drained {
		return res, fmt.Errorf("S3 outage: the backlog was not uploaded within %s of MinIO's return", r.cfg.drainTimeout)
	}
	r.Logf("  backlog uploaded %.1f s after MinIO was back (RSS max %.1f MB meanwhile)", res.DrainS, res.RSSDrainMaxMB)
	return res, s.alive()
}

// everySecond calls f once a second until until passes, f reports done or fails, or ctx
// ends; it returns whether f reported done.
func everySecond(ctx context.Context, until time.Time, f func() (done bool, err error)) (bool, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Now().Before(until) {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-tick.C:
		}
		if done, err := f(); done || err != nil {
			return done, err
		}
	}
	return false, nil
}

// rssTrend is the median RSS of the first and of the last k samples (a third of them
// when there are fewer than 3k).
func rssTrend(samples []outageSample, k int) (early, late float64) {
	k = max(1, min(k, len(samples)/3))
	rss := func(s []outageSample) []float64 {
		out := make([]float64, len(s))
		for i, o := range s {
			out[i] = o.RSSMB
		}
		return out
	}
	if len(samples) == 0 {
		return math.NaN(), math.NaN()
	}
	return oldkit.Median(rss(samples[:min(k, len(samples))])), oldkit.Median(rss(samples[max(0, len(samples)-k):]))
}

// sampleRange is the smallest and largest of v over samples.
func sampleRange(samples []outageSample, v func(outageSample) float64) (lo, hi float64) {
	for i, o := range samples {
		x := v(o)
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	return lo, hi
}
