package live

import (
	"context"
	"fmt"
	"math"
	"onair/scripts/bench/oldkit"
	"time"
)

// playRun is one publish of the stamped input with a player watching.
type playRun struct {
	start   time.Time // just before the publisher dialled: its first byte
	end     time.Time // when the publisher stopped
	player  string
	stamps  []int64 // send times of the stamped frames
	fetches []oldkit.FetchResult
}

// play publishes tags (for publishFor of media time) to stream name on srv with the
// stamping publisher while a probe plays the stream from the moment publishing starts,
// and lets the player run for tail after the publisher stopped.
func play(ctx context.Context, srv oldkit.MediaServer, name string, tags []oldkit.FlvTag, publishFor, tail time.Duration) (playRun, error) {
	ctx, cancel := context.WithTimeout(ctx, publishFor+tail+30*time.Second)
	defer cancel()
	client := oldkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	rec := &oldkit.FetchLog{}
	pub := &stampedPublisher{target: srv.Target(name), tags: tags, duration: publishFor}

	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	probeErr := make(chan error, 1)
	probe := srv.Probe(client, name)
	run := playRun{start: time.Now(), player: probe.Describe()}
	go func() { probeErr <- probe.Run(probeCtx, rec) }()
	pubErr := pub.Run(ctx)
	run.end = time.Now()
	if pubErr == nil {
		_ = oldkit.SleepUntil(ctx, time.Now().Add(tail))
	}
	stopProbe()
	err := <-probeErr
	if pubErr != nil {
		return run, pubErr
	}
	if err != nil {
		return run, err
	}
	if err := ctx.Err(); err != nil {
		return run, fmt.Errorf("play %s: %w", name, err)
	}
	run.stamps = pub.Stamps()
	run.fetches = rec.All()
	return run, nil
}

// measureLatency publishes for warmup + window (+ 2 s so that the window's last frames
// get into a closed segment) and reports the latency of the frames sent in the window.
func measureLatency(ctx context.Context, kind string, srv oldkit.MediaServer, name string, tags []oldkit.FlvTag, warmup, window time.Duration) (latencyResult, error) {
	busy0, _ := oldkit.ReadCPUTimes()
	r, err := play(ctx, srv, name, tags, warmup+window+2*time.Second, 1500*time.Millisecond)
	if err != nil {
		return latencyResult{}, fmt.Errorf("latency on %s: %w", kind, err)
	}
	from, to := r.start.Add(warmup), r.start.Add(warmup+window)
	lat := oldkit.Millis(oldkit.FrameLatencies(r.fetches, from, to))
	sent := 0
	for _, s := range r.stamps {
		if s >= from.UnixNano() && s < to.UnixNano() {
			sent++
		}
	}
	res := latencyResult{
		Server: kind, Player: r.player, WarmupS: warmup.Seconds(), WindowS: window.Seconds(),
		FramesSent: sent, Frames: len(lat), Fetches: len(r.fetches),
		MedianMS: oldkit.Median(lat), P95MS: oldkit.Percentile(lat, 95), MinMS: oldkit.Percentile(lat, 0), MaxMS: oldkit.Percentile(lat, 100),
		MachineBusy: oldkit.BusySince(busy0),
	}
	for _, v := range lat {
		res.LatenciesMS = append(res.LatenciesMS, math.Round(v*10)/10)
	}
	var first error
	res.FetchErrors, first = oldkit.FetchErrors(r.fetches, r.end)
	if first != nil {
		res.FirstError = first.Error()
	}
	if len(lat) == 0 {
		return res, fmt.Errorf("latency on %s: no stamped frame of the window reached the player (%d fetches, first error: %v)", kind, len(r.fetches), first)
	}
	return res, nil
}

// measureFirstFrame publishes briefly and returns the time from the publisher's first
// byte to the first part or segment holding an IDR picture.
func measureFirstFrame(ctx context.Context, kind string, srv oldkit.MediaServer, name string, tags []oldkit.FlvTag) (time.Duration, error) {
	r, err := play(ctx, srv, name, tags, 5*time.Second, time.Second)
	if err != nil {
		return 0, fmt.Errorf("first frame on %s: %w", kind, err)
	}
	at, ok := oldkit.FirstIDRArrival(r.fetches)
	if !ok {
		_, first := oldkit.FetchErrors(r.fetches, r.end)
		return 0, fmt.Errorf("first frame on %s: no IDR picture reached the player in 6 s (%d fetches, first error: %v)", kind, len(r.fetches), first)
	}
	return at.Sub(r.start), nil
}
