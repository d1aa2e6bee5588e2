package record

import (
	"context"
	"fmt"
	"onair/scripts/bench/oldkit"
	"time"
)

// recordStreams is the load and outage phases' node, publishers and broadcasts.
type recordStreams struct {
	node    *oldkit.RigNode
	api     *oldkit.RigAPI
	pubs    []*oldkit.Process
	started []time.Time // when each publisher started
	// broadcast is the id of each room's broadcast, by slug.
	broadcast map[string]string
}

// phaseOff measures CPU and memory with recording switched off in every room.
func (r *recordRun) phaseOff(ctx context.Context) {
	s, err := r.startStreams(ctx, "off", false)
	if s != nil {
		defer s.stop()
	}
	if err != nil {
		r.Fail(err)
		return
	}
	if l, err := r.measureLoad(ctx, s, false); err != nil {
		r.Fail(err)
	} else {
		r.res.Load = append(r.res.Load, l)
	}
}

// phaseOn measures CPU and memory with recording on, then takes MinIO away and back
// while the same streams go on, checks that their recordings are complete and measures
// the time from a publisher leaving to its replay.
func (r *recordRun) phaseOn(ctx context.Context) {
	s, err := r.startStreams(ctx, "on", true)
	if s != nil {
		defer s.stop()
	}
	if err != nil {
		r.Fail(err)
		return
	}
	l, err := r.measureLoad(ctx, s, true)
	if err != nil {
		r.Fail(err)
		return
	}
	r.res.Load = append(r.res.Load, l)
	if r.res.Outage, err = r.measureOutage(ctx, s); err != nil {
		r.Fail(err)
		return
	}
	if r.res.Completion, err = r.checkCompletion(ctx, s); err != nil {
		r.Fail(err)
	}
	if r.res.Replay, err = r.measureReplay(ctx, s); err != nil {
		r.Fail(err)
	}
}

// startStreams starts a fresh onair, sets every room's recording, and starts one looping
// publisher per room, 25 ms apart.
func (r *recordRun) startStreams(ctx context.Context, name string, recording bool) (*recordStreams, error) {
	r.Logf("recording %s: %d streams", name, len(r.slugs))
	node, err := r.startNode(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("recording %s: %w", name, err)
	}
	s := &recordStreams{node: node, api: r.api.At(node.HTTP), broadcast: map[string]string{}}
	for _, slug := range append(r.slugs, recordReplayRoom) {
		if err := s.api.SetRecording(ctx, slug, recording); err != nil {
			return s, fmt.Errorf("recording %s: %w", name, err)
		}
	}
	return s, nil
}

// stop ends the publishers, then onair.
func (s *recordStreams) stop() {
	oldkit.StopAll(s.pubs)
	s.node.Stop()
}

// alive checks that onair and every publisher still run.
func (s *recordStreams) alive() error {
	if err := s.node.Alive(); err != nil {
		return err
	}
	for _, p := range s.pubs {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("a publisher exited (%v): %s; onair log: %s", err, p.Output(), oldkit.Tail(s.node.Proc.Output(), 1500))
		}
	}
	return nil
}

// measureLoad measures onair's idle memory, starts the publishers and samples onair's
// CPU and memory over the window after the warm-up.
func (r *recordRun) measureLoad(ctx context.Context, s *recordStreams, recording bool) (recordLoad, error) {
	res := recordLoad{Recording: recording, Streams: len(r.slugs), WarmupS: r.cfg.warmup.Seconds(), WindowS: r.cfg.window.Seconds()}
	what := "recording " + map[bool]string{false: "off", true: "on"}[recording]
	if err := oldkit.SleepUntil(ctx, time.Now().Add(time.Second)); err != nil {
		return res, err
	}
	pids := []int{s.node.Pid()}
	_, idle, err := oldkit.GroupStat(pids)
	if err != nil {
		return res, fmt.Errorf("%s: idle RSS: %w", what, err)
	}
	res.RSSIdleMB = float64(idle) / oldkit.Mb
	for _, slug := range r.slugs {
		p, err := oldkit.StartFFmpegPublisher(r.input, s.node.PublishURL(r.keys[slug]))
		if err != nil {
			return res, fmt.Errorf("%s: %w", what, err)
		}
		s.pubs = append(s.pubs, p)
		s.started = append(s.started, time.Now())
		if err := oldkit.SleepUntil(ctx, time.Now().Add(25*time.Millisecond)); err != nil {
			return res, err
		}
	}
	if err := oldkit.SleepUntil(ctx, time.Now().Add(r.cfg.warmup)); err != nil {
		return res, err
	}
	if err := s.alive(); err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	for _, slug := range r.slugs {
		live, err := s.api.Live(ctx, slug)
		if err != nil {
			return res, fmt.Errorf("%s: %w", what, err)
		}
		if live {
			res.Live++
		}
		bs, err := s.api.Broadcasts(ctx, slug)
		if err != nil {
			return res, fmt.Errorf("%s: %w", what, err)
		}
		if len(bs) > 0 && bs[0].Ended == nil {
			s.broadcast[slug] = bs[0].ID
		}
	}
	busy0, _ := oldkit.ReadCPUTimes()
	u, err := oldkit.MeasureUsage(ctx, pids, r.cfg.window, time.Second)
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	res.MachineBusy = oldkit.BusySince(busy0)
	res.CPUPercent = u.CPUPercent
	res.RSSMeanMB, res.RSSMaxMB = float64(u.RSSMean)/oldkit.Mb, float64(u.RSSMax)/oldkit.Mb
	res.RSSGrowthMBPerMin = (float64(u.RSSLast) - float64(u.RSSFirst)) / oldkit.Mb / u.Wall.Minutes()

	client := oldkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	sp, err := s.node.Spool(ctx, client)
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	res.SpoolMB, res.SpoolParts = sp.Bytes/oldkit.Mb, sp.Parts
	r.Logf("  %s: CPU %.1f %% of a core, RSS %.1f → %.1f MB (max %.1f), %d/%d live, spool %.1f MB in %.0f chunk files",
		what, res.CPUPercent, res.RSSIdleMB, res.RSSMeanMB, res.RSSMaxMB, res.Live, res.Streams, res.SpoolMB, res.SpoolParts)
	switch {
	case res.Live < res.Streams:
		return res, fmt.Errorf("%s: only %d of %d rooms live", what, res.Live, res.Streams)
	case recording && sp.Recordings < float64(res.Streams):
		return res, fmt.Errorf("%s: %v recordings in progress, want one per stream (%d): is recording on?", what, sp.Recordings, res.Streams)
	case !recording && sp.Recordings > 0:
		return res, fmt.Errorf("%s: %v recordings in progress: recording is not off", what, sp.Recordings)
	}
	return res, nil
}
