package record

import (
	"context"
	"fmt"
	"onair/scripts/bench/oldkit"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// checkCompletion stops the publishers that recorded through the outage and waits until
// every room's broadcast has a replay, noting how long each publisher sent and how long
// its recording lasts.
func (r *recordRun) checkCompletion(ctx context.Context, s *recordStreams) (*completionResult, error) {
	r.Logf("recordings through the outage: %d publishers leave", len(s.pubs))
	oldkit.StopAll(s.pubs)
	left := time.Now()
	res := &completionResult{Rooms: len(r.slugs)}
	pending := map[string]int{} // room → index
	for i, slug := range r.slugs {
		pending[slug] = i
		res.PublishedS = append(res.PublishedS, left.Sub(s.started[i]).Seconds())
	}
	res.RecordedS = make([]float64, len(r.slugs))
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var lastErr error
	for len(pending) > 0 {
		for slug, i := range pending {
			b, err := r.findBroadcast(ctx, s.api, slug, s.broadcast[slug])
			ok := false
			if err == nil {
				ok, err = oldkit.ReplayReady(ctx, s.api, b)
			}
			if err != nil {
				lastErr = err
				continue
			}
			if ok {
				delete(pending, slug)
				res.Complete++
				res.WaitS = time.Since(left).Seconds()
				if b.Recording != nil {
					res.RecordedS[i] = float64(b.Recording.DurationMS) / 1000
				}
			}
		}
		if len(pending) > 0 && oldkit.SleepUntil(ctx, time.Now().Add(100*time.Millisecond)) != nil {
			return res, fmt.Errorf("recordings through the outage: %d of %d without a replay 90 s after the publishers left (last error: %v)",
				len(pending), len(r.slugs), lastErr)
		}
	}
	r.Logf("  all %d replays ready %.1f s after the publishers left; recorded %.1f–%.1f s of %.1f–%.1f s published",
		res.Complete, res.WaitS, slices.Min(res.RecordedS), slices.Max(res.RecordedS), slices.Min(res.PublishedS), slices.Max(res.PublishedS))
	return res, nil
}

// findBroadcast returns the room's broadcast id, or its newest when id is empty.
func (r *recordRun) findBroadcast(ctx context.Context, api *oldkit.RigAPI, slug, id string) (oldkit.RigBroadcast, error) {
	bs, err := api.Broadcasts(ctx, slug)
	if err != nil {
		return oldkit.RigBroadcast{}, err
	}
	for _, b := range bs {
		if b.ID == id || id == "" {
			return b, nil
		}
	}
	return oldkit.RigBroadcast{}, fmt.Errorf("room %s: broadcast %q not listed", slug, id)
}

// measureReplay publishes for a few seconds, replayRuns times, and measures each time
// from the publisher leaving to its replay playlist answering 200.
func (r *recordRun) measureReplay(ctx context.Context, s *recordStreams) (*replayResult, error) {
	r.Logf("publisher left → replay playlist: %d runs of %s", r.cfg.replayRuns, r.cfg.replayPublish)
	res := &replayResult{PublishS: r.cfg.replayPublish.Seconds()}
	for i := range r.cfg.replayRuns {
		url, ready, err := r.replayOnce(ctx, s)
		if err != nil {
			return res, fmt.Errorf("replay run %d: %w", i+1, err)
		}
		res.URLMS = append(res.URLMS, float64(url)/float64(time.Millisecond))
		res.RunsMS = append(res.RunsMS, float64(ready)/float64(time.Millisecond))
		r.Logf("  run %d: replay_url after %d ms, playlist 200 after %d ms", i+1, url.Milliseconds(), ready.Milliseconds())
	}
	res.MedianMS, res.MaxMS = oldkit.Median(res.RunsMS), slices.Max(res.RunsMS)
	return res, nil
}

// replayOnce publishes the input for replayPublish (ffmpeg -re -t … -c copy, which then
// leaves as OBS's "Stop streaming" does) and polls the room's broadcasts every 50 ms until
// the new one lists a replay_url and that playlist answers 200.
func (r *recordRun) replayOnce(ctx context.Context, s *recordStreams) (url, ready time.Duration, err error) {
	before, err := s.api.Broadcasts(ctx, recordReplayRoom)
	if err != nil {
		return 0, 0, err
	}
	seen := map[string]bool{}
	for _, b := range before {
		seen[b.ID] = true
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-t", strconv.FormatFloat(r.cfg.replayPublish.Seconds(), 'f', -1, 64), "-i", r.input,
		"-c", "copy", "-f", "flv", s.node.PublishURL(r.keys[recordReplayRoom])}
	p, err := oldkit.StartProcess("ffmpeg", exec.Command("ffmpeg", args...))
	if err != nil {
		return 0, 0, err
	}
	defer p.Stop(syscall.SIGKILL, 0)
	timer := time.NewTimer(r.cfg.replayPublish + 30*time.Second)
	defer timer.Stop()
	select {
	case <-p.Done():
	case <-timer.C:
		return 0, 0, fmt.Errorf("ffmpeg still publishing %s after it should have stopped", r.cfg.replayPublish+30*time.Second)
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	left := time.Now()
	if _, err := p.Exited(); err != nil {
		return 0, 0, fmt.Errorf("ffmpeg: %w: %s", err, p.Output())
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		bs, err := s.api.Broadcasts(ctx, recordReplayRoom)
		if err == nil && len(bs) > 0 && !seen[bs[0].ID] && bs[0].ReplayURL != "" {
			if url == 0 {
				url = time.Since(left)
			}
			var ok bool
			if ok, err = oldkit.ReplayReady(ctx, s.api, bs[0]); ok {
				return url, time.Since(left), nil
			}
		}
		if oldkit.SleepUntil(ctx, time.Now().Add(50*time.Millisecond)) != nil {
			return 0, 0, fmt.Errorf("no replay 60 s after the publisher left (%s)", describeNewest(bs, seen, err))
		}
	}
}

// describeNewest says what the newest broadcast looked like when the wait gave up.
func describeNewest(bs []oldkit.RigBroadcast, seen map[string]bool, err error) string {
	switch {
	case err != nil:
		return "last error: " + err.Error()
	case len(bs) == 0 || seen[bs[0].ID]:
		return "no new broadcast listed"
	case bs[0].Recording == nil:
		return "the new broadcast has no recording"
	}
	return "recording status " + strings.TrimSpace(bs[0].Recording.Status)
}
