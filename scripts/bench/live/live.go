// Package live is `bench live`: onair and nginx-rtmp side by side on the same input:
// ingest-to-player latency and first playable frame, CPU and memory per publisher, and
// HLS requests per CPU second under many viewers.
package live

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"onair/scripts/bench/benchkit"
)

type results struct {
	benchkit.Head
	Input      benchkit.Input `json:"input"`
	Latency    []latency      `json:"latency"`
	FirstFrame []firstFrame   `json:"first_frame"`
	Load       []load         `json:"load"`
	Viewers    []viewers      `json:"viewers"`
}

// latency is the ingest-to-player latency of one server: for each stamped frame sent
// inside the window, the time until a part or segment holding it had arrived.
type latency struct {
	Server, Player       string
	WarmupS, WindowS     float64
	FramesSent, Frames   int
	MedianMS, P95MS      float64
	MinMS, MaxMS         float64
	Fetches, FetchErrors int
	MachineBusy          float64
	LatenciesMS          []float64 `json:"frame_latencies_ms"`
}

// firstFrame is the time from the publisher's first byte to the arrival of the first
// part or segment holding an IDR picture, over several runs.
type firstFrame struct {
	Server   string
	RunsMS   []float64
	MedianMS float64
}

// load is the server's CPU and memory with N looping publishers; FullDVR is measured at
// the largest publisher count only.
type load struct {
	Server                                string
	Publishers, Live, Dropped             int
	WarmupS, WindowS                      float64
	CPUPercent, CPUPercentPerStream       float64
	RSSIdleMB, RSSMeanMB, RSSMaxMB        float64
	RSSPerStreamMB, RSSGrowthMBPerMin     float64
	DiskMB, FFmpegCPUPercent, MachineBusy float64
	DropDetail                            string   `json:",omitempty"`
	FullDVR                               *fullDVR `json:",omitempty"`
}

// fullDVR is the memory once the DVR window (or playlist) has filled up.
type fullDVR struct {
	AfterS                                    float64 // since the last publisher started
	RSSMB, RSSMaxMB                           float64
	RSSPerStreamMB, RSSMaxPerStreamMB, DiskMB float64
	CPUPercent                                float64 // from the end of the window to now
}

// viewers is an HTTP load of many viewers of one live stream.
type viewers struct {
	Server, Command string
	Paths           []string
	SegmentBytes    int
	benchkit.WrkResult
	CPUSeconds, CPUPercent, BaselineCPU float64
	RequestsPerCPUS, MachineBusy        float64
}

type config struct {
	publishers                             []int
	warmup, window, loadWarmup, loadWindow time.Duration
	fullDVR                                time.Duration
	firstRuns                              int
	wrk                                    benchkit.Wrk
	tags                                   []benchkit.Tag
	input                                  string
	kinds                                  []kind
}

// Run is `bench live`.
func Run(ctx context.Context, env benchkit.Env, args []string) error {
	r := benchkit.NewRun(env)
	// Latency over 30 s after 5 s of publishing, 3 first-frame runs; CPU and memory at 1,
	// 10 and 40 publishers over 20 s after 10 s, and at 40 once the 2 min DVR window is
	// full (130 s after they started); 100 wrk viewers for 15 s.
	c := config{publishers: []int{1, 10, 40}, warmup: 5 * time.Second, window: 30 * time.Second, firstRuns: 3,
		loadWarmup: 10 * time.Second, loadWindow: 20 * time.Second, fullDVR: 130 * time.Second,
		wrk: benchkit.Wrk{Connections: 100, Threads: 2, Duration: 15 * time.Second}}
	res := &results{}
	if err := r.Start(ctx, args, &res.Head); err != nil {
		return err
	}
	defer r.Close()
	res.Machine.Peers = benchkit.FirstLine(ctx, "nginx", "-v")
	var err error
	if c.input, res.Input, err = benchkit.PrepareInput(ctx, r); err == nil {
		c.tags, err = benchkit.ReadFLV(c.input)
	}
	if err != nil {
		return err
	}
	c.kinds = []kind{onairKind(r.Bin), nginxKind()}
	play(ctx, r, c, res)
	for _, n := range c.publishers {
		for _, k := range c.kinds {
			if ctx.Err() != nil {
				break
			}
			r.Logf("CPU and memory: %s with %d publishers", k.Name, n)
			l, err := measureLoad(ctx, r, c, k, n, n == slices.Max(c.publishers))
			if err != nil {
				r.Fail(err)
				continue
			}
			r.Logf("  CPU %.1f %% of a core (%.2f %% per stream), RSS %.1f MB (%.2f MB per stream), %d/%d live",
				l.CPUPercent, l.CPUPercentPerStream, l.RSSMeanMB, l.RSSPerStreamMB, l.Live, n)
			res.Load = append(res.Load, l)
		}
	}
	for _, k := range c.kinds {
		r.Logf("viewers: %s, wrk -c%d for %s", k.Name, c.wrk.Connections, c.wrk.Duration)
		v, err := measureViewers(ctx, r, c, k)
		if err != nil {
			r.Fail(err)
			continue
		}
		r.Logf("  %.0f requests/s, %.0f requests per CPU second", v.RPS, v.RequestsPerCPUS)
		res.Viewers = append(res.Viewers, v)
	}
	return r.Finish(ctx, res, func() string { return section(res) })
}

// start starts a fresh instance of k in the run's directory.
func start(ctx context.Context, r *benchkit.Run, k kind, phase string, streams []string) (*server, error) {
	dir, err := os.MkdirTemp(r.Tmp, k.Name+"-"+phase+"-")
	if err != nil {
		return nil, err
	}
	s, err := k.Start(ctx, dir, streams)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", phase, k.Name, err)
	}
	return s, nil
}

// play measures latency, then the first playable frame (runs interleaved between the
// servers, so that both meet the same disturbances), on one instance of each server.
func play(ctx context.Context, r *benchkit.Run, c config, res *results) {
	names := []string{"lat"}
	for i := range c.firstRuns {
		names = append(names, "ff"+strconv.Itoa(i))
	}
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	for _, k := range c.kinds {
		s, err := start(ctx, r, k, "play", names)
		if err != nil {
			r.Fail(err)
			return
		}
		servers = append(servers, s)
	}
	for _, s := range servers {
		r.Logf("latency: %s, %s warm-up + %s window", s.name, c.warmup, c.window)
		busy := benchkit.StartMeter()
		p, err := publishAndPlay(ctx, s, "lat", c.tags, c.warmup+c.window+2*time.Second, 1500*time.Millisecond)
		if err != nil {
			r.Fail(fmt.Errorf("latency on %s: %w", s.name, err))
			continue
		}
		from, to := p.start.Add(c.warmup).UnixNano(), p.start.Add(c.warmup+c.window).UnixNano()
		arrival := map[int64]time.Time{} // first arrival of each stamp
		l := latency{Server: s.name, Player: p.player, WarmupS: c.warmup.Seconds(), WindowS: c.window.Seconds(), Fetches: len(p.fetches), MachineBusy: busy.Busy()}
		var firstErr error
		for _, f := range p.fetches {
			if f.Err != nil && f.Arrived.Before(p.end) { // once a stream ends, requests for its next part fail as they should
				l.FetchErrors++
				firstErr = cmp.Or(firstErr, f.Err)
			}
			for _, fr := range f.Frames {
				if a, ok := arrival[fr.Stamp]; f.Err == nil && fr.Stamp >= from && fr.Stamp < to && (!ok || f.Arrived.Before(a)) {
					arrival[fr.Stamp] = f.Arrived
				}
			}
		}
		for _, st := range p.stamps {
			if st >= from && st < to {
				l.FramesSent++
				if a, ok := arrival[st]; ok {
					l.LatenciesMS = append(l.LatenciesMS, math.Round(float64(a.UnixNano()-st)/1e5)/10)
				}
			}
		}
		l.Frames = len(l.LatenciesMS)
		if l.Frames == 0 {
			r.Fail(fmt.Errorf("latency on %s: no stamped frame of the window reached the player (%d fetches, first error: %v)", s.name, len(p.fetches), firstErr))
			continue
		}
		l.MedianMS, l.P95MS = benchkit.Median(l.LatenciesMS), benchkit.Percentile(l.LatenciesMS, 95)
		l.MinMS, l.MaxMS = slices.Min(l.LatenciesMS), slices.Max(l.LatenciesMS)
		r.Logf("  median %.0f ms, p95 %.0f ms over %d/%d frames", l.MedianMS, l.P95MS, l.Frames, l.FramesSent)
		res.Latency = append(res.Latency, l)
	}
	ff := make([]firstFrame, len(servers))
	for run := range c.firstRuns {
		for i, s := range servers {
			ff[i].Server = s.name
			p, err := publishAndPlay(ctx, s, "ff"+strconv.Itoa(run), c.tags, 5*time.Second, time.Second)
			var first time.Time
			for _, f := range p.fetches {
				if f.Err == nil && slices.ContainsFunc(f.Frames, func(fr benchkit.Frame) bool { return fr.IDR }) && (first.IsZero() || f.Arrived.Before(first)) {
					first = f.Arrived
				}
			}
			if err == nil && first.IsZero() {
				err = fmt.Errorf("no IDR picture reached the player in 6 s (%d fetches)", len(p.fetches))
			}
			if err != nil {
				r.Fail(fmt.Errorf("first frame on %s: %w", s.name, err))
				continue
			}
			r.Logf("first frame: %s run %d: %d ms", s.name, run+1, first.Sub(p.start).Milliseconds())
			ff[i].RunsMS = append(ff[i].RunsMS, float64(first.Sub(p.start))/float64(time.Millisecond))
		}
	}
	for _, f := range ff {
		if len(f.RunsMS) > 0 {
			f.MedianMS = benchkit.Median(f.RunsMS)
			res.FirstFrame = append(res.FirstFrame, f)
		}
	}
}

// playRun is one publish of the stamped input with a player watching.
type playRun struct {
	start, end time.Time // just before the publisher dialled (its first byte); when it stopped
	player     string
	stamps     []int64 // send times of the stamped frames
	fetches    []benchkit.Fetch
}

// publishAndPlay publishes tags (for publishFor of media time) to stream name on s with
// the stamping publisher while a player plays the stream from the moment publishing
// starts, and lets the player run for tail after the publisher stopped.
func publishAndPlay(ctx context.Context, s *server, name string, tags []benchkit.Tag, publishFor, tail time.Duration) (playRun, error) {
	ctx, cancel := context.WithTimeout(ctx, publishFor+tail+30*time.Second)
	defer cancel()
	client := benchkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	var rec benchkit.FetchLog
	pub := &publisher{url: s.publishURL(name), tags: tags, duration: publishFor}
	playCtx, stopPlayer := context.WithCancel(ctx)
	defer stopPlayer()
	pl := s.player(client, name)
	run := playRun{start: time.Now(), player: pl.Describe()}
	playErr := make(chan error, 1)
	go func() { playErr <- pl.Run(playCtx, &rec) }()
	err := pub.Run(ctx)
	run.end = time.Now()
	if err == nil {
		err = benchkit.SleepUntil(ctx, time.Now().Add(tail))
	}
	stopPlayer()
	if perr := <-playErr; err == nil {
		err = perr
	}
	run.stamps, run.fetches = pub.Stamps(), rec.All()
	return run, err
}

// measureLoad starts a fresh server, measures its idle RSS, starts n looping ffmpeg
// publishers (25 ms apart, so that their key frames do not all arrive in the same
// instant) and samples the server's CPU and RSS over the window after the warm-up. With
// full, it goes on sampling until c.fullDVR after the last publisher started, so that
// the DVR window (onair) or playlist (nginx-rtmp) is full, and records the memory then.
func measureLoad(ctx context.Context, r *benchkit.Run, c config, k kind, n int, full bool) (load, error) {
	res := load{Server: k.Name, Publishers: n, WarmupS: c.loadWarmup.Seconds(), WindowS: c.loadWindow.Seconds()}
	names := make([]string, n)
	for i := range names {
		names[i] = "s" + strconv.Itoa(i)
	}
	s, err := start(ctx, r, k, "load", names)
	if err != nil {
		return res, err
	}
	defer s.Stop()
	if err := benchkit.SleepUntil(ctx, time.Now().Add(time.Second)); err != nil {
		return res, err
	}
	pids := s.pids()
	idle := float64(benchkit.RSS(pids...))
	res.RSSIdleMB = idle / benchkit.MB
	var urls []string
	for _, name := range names {
		urls = append(urls, s.publishURL(name))
	}
	pubs, err := benchkit.StartPublishers(ctx, c.input, urls)
	defer func() { benchkit.StopAll(pubs) }()
	if err != nil {
		return res, err
	}
	var ffPids []int
	for _, p := range pubs {
		ffPids = append(ffPids, p.Pid())
	}
	allStarted := time.Now()
	if err := benchkit.SleepUntil(ctx, allStarted.Add(c.loadWarmup)); err != nil {
		return res, err
	}
	if err := benchkit.AllAlive(s.proc, pubs); err != nil {
		return res, err
	}
	ff := benchkit.StartMeter(ffPids...) // of exited publishers too, until they are reaped
	u, err := benchkit.MeasureUsage(ctx, pids, c.loadWindow, time.Second)
	if err != nil {
		return res, err
	}
	res.MachineBusy = ff.Busy()
	res.CPUPercent, res.CPUPercentPerStream = u.CPUPercent, u.CPUPercent/float64(n)
	res.RSSMeanMB, res.RSSMaxMB = float64(u.RSSMean)/benchkit.MB, float64(u.RSSMax)/benchkit.MB
	res.RSSPerStreamMB = (float64(u.RSSMean) - idle) / benchkit.MB / float64(n)
	res.RSSGrowthMBPerMin = (float64(u.RSSLast) - float64(u.RSSFirst)) / benchkit.MB / u.Wall.Minutes()
	res.FFmpegCPUPercent = 100 * ff.CPU() / u.Wall.Seconds()
	client := benchkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	for _, name := range names {
		if s.ready(ctx, client, name) {
			res.Live++
		}
	}
	disk, _ := benchkit.DirSize(s.dataDir)
	res.DiskMB = float64(disk) / benchkit.MB
	if rest := time.Until(allStarted.Add(c.fullDVR)); full && c.fullDVR > 0 && rest > 0 {
		u, err := benchkit.MeasureUsage(ctx, pids, rest, time.Second)
		if err != nil {
			return res, fmt.Errorf("load %s with a full DVR window: %w", k.Name, err)
		}
		disk, _ := benchkit.DirSize(s.dataDir)
		res.FullDVR = &fullDVR{AfterS: time.Since(allStarted).Seconds(), RSSMB: float64(u.RSSLast) / benchkit.MB, RSSMaxMB: float64(u.RSSMax) / benchkit.MB,
			RSSPerStreamMB: (float64(u.RSSLast) - idle) / benchkit.MB / float64(n), RSSMaxPerStreamMB: (float64(u.RSSMax) - idle) / benchkit.MB / float64(n),
			DiskMB: float64(disk) / benchkit.MB, CPUPercent: u.CPUPercent}
	}
	for _, p := range pubs { // the server closed their connection
		if err := p.Alive(); err != nil {
			res.Dropped++
			if res.DropDetail == "" {
				res.DropDetail = fmt.Sprintf("%v; server log: %s", err, benchkit.Tail(s.proc.Output(), 1500))
			}
		}
	}
	return res, s.proc.Alive()
}

// measureViewers starts a fresh server with one live stream and loads it with wrk: every
// connection alternates between the stream's media playlist and its newest complete
// segment, as viewers of one stream do.
func measureViewers(ctx context.Context, r *benchkit.Run, c config, k kind) (viewers, error) {
	v := viewers{Server: k.Name}
	s, err := start(ctx, r, k, "viewers", []string{"view"})
	if err != nil {
		return v, err
	}
	defer s.Stop()
	pub, err := benchkit.StartFFmpeg(c.input, s.publishURL("view"))
	if err != nil {
		return v, err
	}
	defer pub.Stop(syscall.SIGTERM, 3*time.Second)
	if err := benchkit.SleepUntil(ctx, time.Now().Add(8*time.Second)); err != nil {
		return v, err
	}
	client := benchkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	if v.Paths, err = s.loadPaths(ctx, client, "view"); err != nil {
		return v, err
	}
	seg, _, err := benchkit.HTTPGet(ctx, client, s.http+v.Paths[1])
	if err != nil {
		return v, err
	}
	v.SegmentBytes = len(seg)
	pids := s.pids()
	base, err := benchkit.MeasureUsage(ctx, pids, 3*time.Second, time.Second)
	if err != nil {
		return v, err
	}
	v.BaselineCPU = base.CPUPercent
	w := c.wrk
	w.Paths = v.Paths
	m := benchkit.StartMeter(pids...)
	if v.WrkResult, err = w.Run(ctx, r.Tmp, s.http); err != nil {
		return v, err
	}
	v.Command = "wrk " + strings.Join(w.Args("paths.lua", s.http), " ")
	v.CPUSeconds, v.CPUPercent, v.MachineBusy = m.CPU(), m.Percent(), m.Busy()
	v.RequestsPerCPUS = benchkit.Ratio(float64(v.Requests), v.CPUSeconds)
	return v, benchkit.AllAlive(s.proc, []*benchkit.Process{pub})
}
