// Package record is `bench record`: what recording costs, what an S3 outage does to
// onair's memory, and how soon a replay exists after the publisher leaves.
package record

import (
	"cmp"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"

	"onair/scripts/bench/benchkit"
)

type results struct {
	benchkit.Head
	Input      benchkit.Input `json:"input"`
	Streams    int            `json:"streams"`
	Load       []load         `json:"load"` // recording off, then on, each on a fresh onair
	Outage     *outage        `json:"s3_outage,omitempty"`
	Completion *completion    `json:"completion,omitempty"`
	Replay     *replay        `json:"replay,omitempty"`
}

// load is onair's CPU and memory with N looping publishers; the spool is the recording
// backlog at the end of the window.
type load struct {
	Recording                        bool
	Streams, Live                    int
	WarmupS, WindowS, CPUPercent     float64
	RSSIdleMB, RSSMeanMB, RSSMaxMB   float64
	SpoolMB, SpoolParts, MachineBusy float64
}

// sample is one second of the outage: t since MinIO was killed.
type sample struct {
	AtS                        float64
	Phase                      string
	RSSMB, SpoolMB, SpoolParts float64
}

// outage is onair's memory and recording backlog while MinIO is down, and how long the
// backlog takes to go up once it is back. RSSEarlyMB and RSSLateMB are the medians of
// the first and the last 10 s: the trend, without GC's swings. DrainS is from MinIO
// answering ready again until no full chunk waited (parts pending ≤ recordings).
type outage struct {
	DownS                                          float64
	RSSStartMB, RSSEndMB, RSSMinMB, RSSMaxMB       float64
	RSSEarlyMB, RSSLateMB, RSSDrainMaxMB           float64
	SpoolStartMB, SpoolEndMB, PartsStart, PartsEnd float64
	DiskStartMB, DiskEndMB, DrainS, MachineBusy    float64
	Samples                                        []sample
}

// completion checks the recordings that went through the outage: how long each
// publisher sent and its recording lasts, and the wait for the last replay.
type completion struct {
	Rooms, Complete       int
	WaitS                 float64
	PublishedS, RecordedS []float64
}

// replay is the time from a publisher leaving to its replay playlist answering 200
// (RunsMS), and to the broadcast listing a replay_url (URLMS).
type replay struct {
	PublishS        float64
	RunsMS, URLMS   []float64
	MedianMS, MaxMS float64
}

const replayRoom = "rec-replay"

type run struct {
	*benchkit.Run
	res   *results
	stack benchkit.Stack
	api   *benchkit.API // its session works on every node
	slugs []string
	keys  map[string]string
}

// The run's settings: 10 streams publish for 10 s before each 20 s window (recording
// off, then on); MinIO is down for 60 s and the backlog has 2 min to upload after it;
// then 5 publisher-left-to-replay runs publish 6 s each.
const (
	streamCount                                 = 10
	loadWarmup, loadWindow, outageFor, drainFor = 10 * time.Second, 20 * time.Second, 60 * time.Second, 2 * time.Minute
	replayRuns, replayPublish                   = 5, 6 * time.Second
)

// Run is `bench record`.
func Run(ctx context.Context, env benchkit.Env, args []string) error {
	r := &run{Run: benchkit.NewRun(env), res: &results{}}
	r.res.Streams = streamCount
	if err := r.Start(ctx, args, &r.res.Head); err != nil {
		return err
	}
	defer r.Close()
	err := r.setup(ctx)
	if err == nil {
		r.phase(ctx, false)
		r.phase(ctx, true)
	}
	r.stack.Stop()
	if err != nil {
		return err
	}
	return r.Finish(ctx, r.res, func() string { return section(r.res) })
}

// setup starts FerretDB and MinIO and creates the account and rooms through a first node.
func (r *run) setup(ctx context.Context) error {
	if err := r.stack.Launch(ctx, r.Run, &r.res.Input); err != nil {
		return err
	}
	n, err := r.stack.Node(ctx, r.Run, "setup")
	if err != nil {
		return err
	}
	defer n.Stop()
	for i := range r.res.Streams {
		r.slugs = append(r.slugs, "rec-"+strconv.Itoa(i))
	}
	r.api, r.keys, err = benchkit.Account(ctx, n.HTTP, append(r.slugs, replayRoom)...)
	return err
}

// streams is a phase's node, publishers and broadcasts.
type streams struct {
	node      *benchkit.Node
	api       *benchkit.API
	pubs      []*benchkit.Process
	broadcast map[string]string // each room's broadcast id
}

// alive checks that onair and every publisher still run.
func (s *streams) alive() error { return benchkit.AllAlive(s.node.Proc, s.pubs) }

// spool is onair's recording backlog as /metrics tells it.
func (s *streams) spool(ctx context.Context) (recordings, bytes, parts float64, err error) {
	text, err := s.node.Metrics(ctx)
	recordings, ok0 := benchkit.PromValue(text, "onair_recordings_in_progress")
	bytes, ok1 := benchkit.PromValue(text, "onair_recording_spool_bytes")
	parts, ok2 := benchkit.PromValue(text, "onair_recording_parts_pending")
	if err == nil && !(ok0 && ok1 && ok2) {
		err = fmt.Errorf("metrics: no onair_recordings_in_progress, onair_recording_spool_bytes or onair_recording_parts_pending")
	}
	return recordings, bytes, parts, err
}

// phase starts a fresh onair with every room's recording off or on and measures CPU and
// memory; with recording on it then takes MinIO away and back while the same streams
// go on, checks that their recordings are complete and measures the time from a
// publisher leaving to its replay.
func (r *run) phase(ctx context.Context, recording bool) {
	what := "recording " + map[bool]string{false: "off", true: "on"}[recording]
	r.Logf("%s: %d streams", what, len(r.slugs))
	n, err := r.stack.Node(ctx, r.Run, map[bool]string{false: "off", true: "on"}[recording])
	if err != nil {
		r.Fail(fmt.Errorf("%s: %w", what, err))
		return
	}
	s := &streams{node: n, api: r.api.At(n.HTTP), broadcast: map[string]string{}}
	defer func() {
		benchkit.StopAll(s.pubs)
		n.Stop()
	}()
	for _, slug := range append(r.slugs, replayRoom) {
		if err == nil {
			err = s.api.SetRecording(ctx, slug, recording)
		}
	}
	var l load
	if err == nil {
		l, err = r.measureLoad(ctx, s, recording)
	}
	if err != nil {
		r.Fail(fmt.Errorf("%s: %w", what, err))
		return
	}
	r.res.Load = append(r.res.Load, l)
	if !recording {
		return
	}
	for _, step := range []func(context.Context, *streams) error{r.measureOutage, r.checkCompletion, r.measureReplay} {
		if err := step(ctx, s); err != nil {
			r.Fail(err)
			return
		}
	}
}

// measureLoad measures onair's idle memory, starts the publishers (25 ms apart) and
// samples onair's CPU and memory over the window after the warm-up.
func (r *run) measureLoad(ctx context.Context, s *streams, recording bool) (load, error) {
	res := load{Recording: recording, Streams: len(r.slugs), WarmupS: loadWarmup.Seconds(), WindowS: loadWindow.Seconds()}
	if err := benchkit.SleepUntil(ctx, time.Now().Add(time.Second)); err != nil {
		return res, err
	}
	res.RSSIdleMB = float64(benchkit.RSS(s.node.Pid())) / benchkit.MB
	var urls []string
	for _, slug := range r.slugs {
		urls = append(urls, s.node.PublishURL(r.keys[slug]))
	}
	var err error
	if s.pubs, err = benchkit.StartPublishers(ctx, r.stack.Input, urls); err != nil {
		return res, err
	}
	if err := benchkit.SleepUntil(ctx, time.Now().Add(loadWarmup)); err != nil {
		return res, err
	}
	if err := s.alive(); err != nil {
		return res, err
	}
	for _, slug := range r.slugs {
		live, err := s.api.Live(ctx, slug)
		bs, berr := s.api.Broadcasts(ctx, slug)
		if err = cmp.Or(err, berr); err != nil {
			return res, err
		}
		if live {
			res.Live++
		}
		if len(bs) > 0 && bs[0].Ended == nil {
			s.broadcast[slug] = bs[0].ID
		}
	}
	m := benchkit.StartMeter()
	u, err := benchkit.MeasureUsage(ctx, []int{s.node.Pid()}, loadWindow, time.Second)
	if err != nil {
		return res, err
	}
	res.MachineBusy, res.CPUPercent = m.Busy(), u.CPUPercent
	res.RSSMeanMB, res.RSSMaxMB = float64(u.RSSMean)/benchkit.MB, float64(u.RSSMax)/benchkit.MB
	recordings, bytes, parts, err := s.spool(ctx)
	if err != nil {
		return res, err
	}
	res.SpoolMB, res.SpoolParts = bytes/benchkit.MB, parts
	r.Logf("  CPU %.1f %% of a core, RSS %.1f → %.1f MB (max %.1f), %d/%d live, spool %.1f MB in %.0f chunk files",
		res.CPUPercent, res.RSSIdleMB, res.RSSMeanMB, res.RSSMaxMB, res.Live, res.Streams, res.SpoolMB, res.SpoolParts)
	switch {
	case res.Live < res.Streams:
		return res, fmt.Errorf("only %d of %d rooms live", res.Live, res.Streams)
	case recording && recordings < float64(res.Streams), !recording && recordings > 0:
		return res, fmt.Errorf("%v recordings in progress with %d streams", recordings, res.Streams)
	}
	return res, nil
}

// measureOutage kills MinIO (its process group) for the outage while the streams go on
// recording, samples onair's RSS and recording backlog every second, then starts MinIO
// again on the same port and data and waits for the backlog to go up.
func (r *run) measureOutage(ctx context.Context, s *streams) error {
	r.Logf("S3 outage: MinIO down for %s", outageFor)
	o := &outage{}
	r.res.Outage = o
	var killed time.Time
	take := func(phase string) (sample, error) {
		_, bytes, parts, err := s.spool(ctx)
		x := sample{AtS: time.Since(killed).Seconds(), Phase: phase, RSSMB: float64(benchkit.RSS(s.node.Pid())) / benchkit.MB, SpoolMB: bytes / benchkit.MB, SpoolParts: parts}
		o.Samples = append(o.Samples, x)
		return x, err
	}
	everySecond := func(until time.Time, f func() (bool, error)) (bool, error) {
		for time.Now().Before(until) {
			if err := benchkit.SleepUntil(ctx, time.Now().Add(time.Second)); err != nil {
				return false, err
			}
			if done, err := f(); done || err != nil {
				return done, err
			}
		}
		return false, nil
	}
	runs := s.node.DataDir + "/runs" // the runs' logs: the recordings until their chunks are stored
	disk0, _ := benchkit.DirSize(runs)
	busy := benchkit.StartMeter()
	killed = time.Now()
	r.stack.S3.Kill()
	first, err := take("down")
	last := first
	if err == nil {
		_, err = everySecond(killed.Add(outageFor), func() (bool, error) { last, err = take("down"); return false, err })
	}
	if err != nil {
		return fmt.Errorf("S3 outage: %w", err)
	}
	disk1, _ := benchkit.DirSize(runs)
	if err := r.stack.S3.Restart(ctx); err != nil {
		return fmt.Errorf("S3 outage: restart MinIO: %w", err)
	}
	back := time.Now()
	var rss []float64
	for _, x := range o.Samples {
		rss = append(rss, x.RSSMB)
	}
	k := max(1, min(10, len(rss)/3))
	o.DownS, o.RSSStartMB, o.RSSEndMB, o.RSSMinMB, o.RSSMaxMB = back.Sub(killed).Seconds(), first.RSSMB, last.RSSMB, slices.Min(rss), slices.Max(rss)
	o.RSSEarlyMB, o.RSSLateMB = benchkit.Median(rss[:k]), benchkit.Median(rss[len(rss)-k:])
	o.SpoolStartMB, o.SpoolEndMB, o.PartsStart, o.PartsEnd = first.SpoolMB, last.SpoolMB, first.SpoolParts, last.SpoolParts
	o.DiskStartMB, o.DiskEndMB = float64(disk0)/benchkit.MB, float64(disk1)/benchkit.MB
	r.Logf("  RSS %.1f → %.1f MB (medians of the first and last 10 s %.1f → %.1f); spool %.1f → %.1f MB", o.RSSStartMB, o.RSSEndMB, o.RSSEarlyMB, o.RSSLateMB, o.SpoolStartMB, o.SpoolEndMB)
	if err := s.alive(); err != nil {
		return fmt.Errorf("S3 outage: %w", err)
	}
	drained, err := everySecond(back.Add(drainFor), func() (bool, error) {
		x, err := take("drain")
		o.RSSDrainMaxMB, o.DrainS = max(o.RSSDrainMaxMB, x.RSSMB), time.Since(back).Seconds()
		return x.SpoolParts <= float64(len(r.slugs)), err
	})
	o.MachineBusy = busy.Busy()
	if err == nil && !drained {
		err = fmt.Errorf("the backlog was not uploaded within %s of MinIO's return", drainFor)
	}
	if err != nil {
		return fmt.Errorf("S3 outage: %w", err)
	}
	r.Logf("  backlog uploaded %.1f s after MinIO was back", o.DrainS)
	return s.alive()
}

// checkCompletion stops the publishers that recorded through the outage and waits until
// every room's broadcast has a replay.
func (r *run) checkCompletion(ctx context.Context, s *streams) error {
	r.Logf("recordings through the outage: %d publishers leave", len(s.pubs))
	benchkit.StopAll(s.pubs)
	left := time.Now()
	c := &completion{Rooms: len(r.slugs), RecordedS: make([]float64, len(r.slugs))}
	r.res.Completion = c
	pending := map[string]int{}
	for i, slug := range r.slugs {
		pending[slug] = i
		c.PublishedS = append(c.PublishedS, left.Sub(s.pubs[i].Started).Seconds())
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var lastErr error
	for len(pending) > 0 {
		for slug, i := range pending {
			bs, err := s.api.Broadcasts(ctx, slug)
			for _, b := range bs {
				if b.ID != s.broadcast[slug] {
					continue
				}
				ok, rerr := s.api.ReplayReady(ctx, b)
				if err = rerr; ok {
					delete(pending, slug)
					c.Complete, c.WaitS = c.Complete+1, time.Since(left).Seconds()
					if b.Recording != nil {
						c.RecordedS[i] = float64(b.Recording.DurationMS) / 1000
					}
				}
			}
			lastErr = cmp.Or(err, lastErr)
		}
		if len(pending) > 0 && benchkit.SleepUntil(ctx, time.Now().Add(100*time.Millisecond)) != nil {
			return fmt.Errorf("recordings through the outage: %d of %d without a replay 90 s after the publishers left (last error: %v)", len(pending), len(r.slugs), lastErr)
		}
	}
	r.Logf("  all %d replays ready %.1f s after the publishers left", c.Complete, c.WaitS)
	return nil
}

// measureReplay publishes the input for a few seconds (ffmpeg -re -t … -c copy, which
// then leaves as OBS's "Stop streaming" does), replayRuns times, and polls the room's
// broadcasts every 50 ms until the new one lists a replay_url and that playlist answers
// 200.
func (r *run) measureReplay(ctx context.Context, s *streams) error {
	r.Logf("publisher left → replay playlist: %d runs of %s", replayRuns, replayPublish)
	p := &replay{PublishS: replayPublish.Seconds()}
	r.res.Replay = p
	for i := range replayRuns {
		url, ready, err := r.replayOnce(ctx, s)
		if err != nil {
			return fmt.Errorf("replay run %d: %w", i+1, err)
		}
		p.URLMS, p.RunsMS = append(p.URLMS, url), append(p.RunsMS, ready)
		r.Logf("  run %d: replay_url after %.0f ms, playlist 200 after %.0f ms", i+1, url, ready)
	}
	p.MedianMS, p.MaxMS = benchkit.Median(p.RunsMS), slices.Max(p.RunsMS)
	return nil
}

func (r *run) replayOnce(ctx context.Context, s *streams) (urlMS, readyMS float64, err error) {
	seen := map[string]bool{}
	bs, err := s.api.Broadcasts(ctx, replayRoom)
	for _, b := range bs {
		seen[b.ID] = true
	}
	var p *benchkit.Process
	if err == nil {
		p, err = benchkit.StartProcess("ffmpeg", exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
			"-t", strconv.FormatFloat(replayPublish.Seconds(), 'f', -1, 64), "-i", r.stack.Input, "-c", "copy", "-f", "flv", s.node.PublishURL(r.keys[replayRoom])))
	}
	if err != nil {
		return 0, 0, err
	}
	defer p.Stop(syscall.SIGKILL, 0)
	select {
	case <-p.Done():
	case <-time.After(replayPublish + 30*time.Second):
		return 0, 0, fmt.Errorf("ffmpeg still publishing long after it should have stopped")
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	left := time.Now()
	if err := p.Wait(); err != nil {
		return 0, 0, fmt.Errorf("ffmpeg: %w: %s", err, p.Output())
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		bs, err := s.api.Broadcasts(ctx, replayRoom)
		if err == nil && len(bs) > 0 && !seen[bs[0].ID] && bs[0].ReplayURL != "" {
			if urlMS == 0 {
				urlMS = float64(time.Since(left)) / float64(time.Millisecond)
			}
			if ok, _ := s.api.ReplayReady(ctx, bs[0]); ok {
				return urlMS, float64(time.Since(left)) / float64(time.Millisecond), nil
			}
		}
		if benchkit.SleepUntil(ctx, time.Now().Add(50*time.Millisecond)) != nil {
			return 0, 0, fmt.Errorf("no replay 60 s after the publisher left (last error: %v)", err)
		}
	}
}
