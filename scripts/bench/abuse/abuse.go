package abuse

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"onair/media/rtmp"
	"onair/scripts/bench/benchkit"
	"onair/scripts/bench/live"
	"onair/scripts/hostile"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// abuseConfig is the `abuse` benchmark's settings: each case's warm-up on a fresh node,
// its window and the wait after it; each case's connections; the token cost's rounds.
type abuseConfig struct {
	warmup, window, after            time.Duration
	pong, preauth, chat, idle, round int
	wrk                              benchkit.Wrk
}

// Rooms of the run: the abuse cases publish, play and chat in a public one; the token
// cost is measured on one switched between unlisted and private.
const (
	abuseRoom = "abuse"
	tokenRoom = "tokens"
	// abusePerAddress is how many connections the RTMP floods open from each loopback
	// address: under onair's default per-address limit, so that the load reaches it.
	abusePerAddress = 10
)

// abuseRun is one run of `bench abuse`.
type abuseRun struct {
	*benchkit.Run
	cfg        abuseConfig
	stack      benchkit.Stack
	api        *benchkit.API
	keys       map[string]string
	playbackID string // of tokenRoom
	res        *abuseResults
}

// Run is `bench abuse`: onair's memory under each of the abuse cases while a publisher
// and a player are served, then the CPU cost of private rooms' playback tokens.
func Run(ctx context.Context, env benchkit.Env, args []string) error {
	a := &abuseRun{Run: benchkit.NewRun(env), res: &abuseResults{TargetMB: abuseTargetMB},
		cfg: abuseConfig{warmup: 8 * time.Second, window: 20 * time.Second, after: 5 * time.Second, pong: 3, preauth: 1000, chat: 2000, idle: 2000,
			round: 3, wrk: benchkit.Wrk{Threads: 2, Connections: 100, Duration: 10 * time.Second}}}
	c := &a.cfg
	if err := a.Start(ctx, args, &a.res.Head); err != nil {
		return err
	}
	defer a.Close()
	a.res.WindowS, a.res.AfterS = c.window.Seconds(), c.after.Seconds()
	if err := a.setup(ctx); err != nil {
		a.Fail(err)
	} else {
		for _, c := range a.cases() {
			if r, err := a.measureCase(ctx, c); err != nil {
				a.Fail(fmt.Errorf("%s: %w", c.name, err))
			} else {
				a.res.Cases = append(a.res.Cases, r)
			}
		}
		if err := a.measureTokens(ctx); err != nil {
			a.Fail(fmt.Errorf("token cost: %w", err))
		}
	}
	a.stack.Stop()
	return a.Finish(ctx, a.res, func() string { return abuseSection(a.res) })
}

// setup starts FerretDB and MinIO, and creates the account and rooms through a first node.
func (a *abuseRun) setup(ctx context.Context) error {
	if err := a.stack.Launch(ctx, a.Run, &a.res.Input); err != nil {
		return err
	}
	n, err := a.startNode(ctx, "setup")
	if err != nil {
		return err
	}
	defer n.Stop()
	if a.api, a.keys, err = benchkit.Account(ctx, n.HTTP, abuseRoom); err != nil {
		return err
	}
	var out struct {
		Room struct {
			PlaybackID string `json:"playback_id"`
		} `json:"room"`
		StreamKey string `json:"stream_key"`
	}
	err = a.api.Do(ctx, http.MethodPost, "/api/v1/rooms", map[string]any{"slug": tokenRoom, "title": "Bench tokens", "visibility": "private"}, &out, http.StatusCreated)
	if err == nil {
		a.keys[tokenRoom], a.playbackID = out.StreamKey, out.Room.PlaybackID
		if a.playbackID == "" {
			return fmt.Errorf("room %s created private without a playback id", tokenRoom)
		}
		err = a.api.SetRecording(ctx, tokenRoom, false) // S3 uploads stay out of the CPU figures
	}
	return err
}

// startNode starts a fresh onair on the run's FerretDB and MinIO with the shipped limits:
// launchOnair lifts the per-address RTMP limit for the other benchmarks, this one puts
// the default back.
func (a *abuseRun) startNode(ctx context.Context, name string) (*benchkit.Node, error) {
	return a.stack.Node(ctx, a.Run, name, "ONAIR_RTMP_MAX_CONNECTIONS_PER_ADDRESS=16")
}

// abuseSlot holds one hostile connection until the server closes it or ctx ends; it
// calls opened once the connection is established as the attack means it.
type abuseSlot func(ctx context.Context, i int, opened func()) error

// abuseCase is one kind of abuse: n connections, each held by slot (none for the
// control case).
type abuseCase struct {
	name string
	n    int
	slot func(n *benchkit.Node) abuseSlot
}

func (a *abuseRun) cases() []abuseCase {
	chatURL := func(n *benchkit.Node) string { return n.ChatURL(abuseRoom) }
	rtmpAddr := func(n *benchkit.Node) string { u, _ := url.Parse(n.RTMP); return u.Host }
	httpAddr := func(n *benchkit.Node) string { return strings.TrimPrefix(n.HTTP, "http://") }
	pings := bytes.Repeat(hostile.MaskedFrame(0x9, bytes.Repeat([]byte("p"), 125), true), 512)
	attack := hostile.UnfinishedUpTo(rtmp.SetupMaxMessageSize, rtmp.SetupMaxBuffered)
	return []abuseCase{
		{name: caseControl},
		{name: casePong, n: a.cfg.pong, slot: func(n *benchkit.Node) abuseSlot {
			return func(ctx context.Context, _ int, opened func()) error {
				nc, _, err := hostile.DialWebsocket(&net.Dialer{Timeout: 5 * time.Second}, chatURL(n), http.Header{"Origin": {n.HTTP}})
				return holdConn(ctx, nc, err, opened, func(c net.Conn) error {
					for {
						if _, err := c.Write(pings); err != nil {
							return err
						}
					}
				})
			}
		}},
		{name: casePreauth, n: a.cfg.preauth, slot: func(n *benchkit.Node) abuseSlot {
			return func(ctx context.Context, i int, opened func()) error {
				nc, err := hostile.DialFrom(rtmpAddr(n), loopbackSource(i))
				return holdConn(ctx, nc, err, nil, func(c net.Conn) error {
					if err := hostile.RTMPHandshake(c); err != nil {
						return err
					}
					if _, err := c.Write(attack); err != nil {
						return err
					}
					opened()
					_, err := io.Copy(io.Discard, c)
					return err
				})
			}
		}},
		{name: caseChat, n: a.cfg.chat, slot: func(n *benchkit.Node) abuseSlot {
			return func(ctx context.Context, _ int, opened func()) error {
				ws, _, err := (&websocket.Dialer{HandshakeTimeout: 10 * time.Second}).DialContext(ctx, chatURL(n), http.Header{"Origin": {n.HTTP}})
				if err != nil {
					return err
				}
				defer context.AfterFunc(ctx, func() { ws.Close() })()
				defer ws.Close()
				for joined := false; ; joined = true { // the history frame first
					if _, _, err := ws.ReadMessage(); err != nil { // answers the server's pings
						return err
					}
					if !joined {
						opened()
					}
				}
			}
		}},
		{name: caseIdle, n: a.cfg.idle, slot: func(n *benchkit.Node) abuseSlot {
			return func(ctx context.Context, i int, opened func()) error {
				addr := httpAddr(n)
				if i%2 == 1 {
					addr = rtmpAddr(n)
				}
				nc, err := hostile.DialFrom(addr, loopbackSource(i/2))
				return holdConn(ctx, nc, err, opened, func(c net.Conn) error { _, err := io.Copy(io.Discard, c); return err })
			}
		}},
	}
}

// holdConn runs attack on nc (dialled with err) until it returns or ctx ends, calling
// opened first unless nil, and closes nc.
func holdConn(ctx context.Context, nc net.Conn, err error, opened func(), attack func(net.Conn) error) error {
	if err != nil {
		return err
	}
	defer nc.Close()
	defer context.AfterFunc(ctx, func() { nc.Close() })()
	if opened != nil {
		opened()
	}
	return attack(nc)
}

// loopbackSource is the address of the k-th group of abusePerAddress connections,
// 127.2.0.1 and up (the players dial from 127.1.x.x).
func loopbackSource(i int) string {
	k := i / abusePerAddress
	return fmt.Sprintf("127.2.%d.%d", k/250, 1+k%250)
}

// abuseLoad keeps n slots busy, each dialling again 50 ms after its connection ended, as an
// attacker who reconnects; it counts what happened to them.
type abuseLoad struct {
	open, peak, dials, closed, failed atomic.Int64
	mu                                sync.Mutex
	firstErr                          string
}

func (l *abuseLoad) start(ctx context.Context, n int, slot abuseSlot) (wait func()) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Spread over a second or so, as a botnet's connections arrive.
			if benchkit.SleepUntil(ctx, time.Now().Add(time.Duration(i)*time.Second/time.Duration(n))) != nil {
				return
			}
			for ctx.Err() == nil {
				l.dials.Add(1)
				up := false
				err := slot(ctx, i, func() {
					up = true
					for open, peak := l.open.Add(1), l.peak.Load(); open > peak && !l.peak.CompareAndSwap(peak, open); peak = l.peak.Load() {
					}
				})
				if up {
					l.open.Add(-1)
				}
				if ctx.Err() != nil {
					return
				}
				if up {
					l.closed.Add(1)
				} else {
					l.failed.Add(1)
					l.mu.Lock()
					if l.firstErr == "" && err != nil {
						l.firstErr = err.Error()
					}
					l.mu.Unlock()
				}
				_ = benchkit.SleepUntil(ctx, time.Now().Add(50*time.Millisecond))
			}
		})
	}
	return wg.Wait
}

// measureCase starts a fresh node with a publisher and a player, measures its memory,
// then its memory, CPU and metrics under the abuse, and what the player and publisher got.
func (a *abuseRun) measureCase(ctx context.Context, c abuseCase) (abuseCaseResult, error) {
	r := abuseCaseResult{Name: c.name, Connections: c.n}
	n, err := a.startNode(ctx, strings.ReplaceAll(c.name, " ", "-"))
	if err != nil {
		return r, err
	}
	defer n.Stop()
	api := a.api.At(n.HTTP)
	pub, err := api.PublishLive(ctx, a.stack.Input, n, abuseRoom, a.keys[abuseRoom])
	if err != nil {
		return r, err
	}
	defer pub.Stop(syscall.SIGTERM, 3*time.Second)
	playCtx, stopPlayer := context.WithCancel(ctx)
	players, waitPlayer := benchkit.StartViewers(playCtx, 1, func(int) (int, int, string) { return 0, 0, n.HTTP + "/live/" + abuseRoom + "/index.m3u8" })
	defer waitPlayer()
	defer stopPlayer()
	t0 := time.Now()
	pids := []int{n.Pid()}
	if err := benchkit.SleepUntil(ctx, time.Now().Add(a.cfg.warmup)); err != nil {
		return r, err
	}
	base, err := benchkit.MeasureUsage(ctx, pids, 4*time.Second, 250*time.Millisecond)
	if err != nil {
		return r, err
	}
	client := benchkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	m0, err := n.Metrics(ctx)
	if err != nil {
		return r, err
	}

	from := time.Since(t0).Seconds()
	abuseCtx, stopAbuse := context.WithCancel(ctx)
	var load abuseLoad
	waitLoad := func() {}
	if c.slot != nil {
		waitLoad = load.start(abuseCtx, c.n, c.slot(n))
	}
	peaks := make(chan map[string]float64, 1)
	go func() { peaks <- peakMetrics(abuseCtx, n, client) }()
	m := benchkit.StartMeter()
	u, err := benchkit.MeasureUsage(ctx, pids, a.cfg.window, 250*time.Millisecond)
	r.MachineBusy = m.Busy()
	to := time.Since(t0).Seconds()
	live, lerr := api.Live(ctx, abuseRoom) // while the abuse still runs
	stopAbuse()
	waitLoad()
	p := <-peaks
	if err != nil {
		return r, err
	}
	r.PeakChatSockets, r.PeakRTMPConnections, r.PeakGoroutines = p["onair_chat_sockets"], p["onair_rtmp_connections"], p["go_goroutines"]
	r.PeakHeapMB, r.PeakStacksMB = p["go_memstats_heap_inuse_bytes"]/benchkit.MB, p["go_memstats_stack_inuse_bytes"]/benchkit.MB
	r.PeakOpen, r.Dials, r.ClosedByServer, r.Failed, r.FirstError = load.peak.Load(), load.dials.Load(), load.closed.Load(), load.failed.Load(), load.firstErr
	r.RSSBaseMB, r.RSSPeakMB, r.CPUPercent = float64(base.RSSMean)/benchkit.MB, float64(u.RSSMax)/benchkit.MB, u.CPUPercent
	if m1, err := n.Metrics(ctx); err == nil {
		r.Refused = map[string]float64{}
		before := benchkit.PromByLabel(m0, "onair_rtmp_refused_total")
		for k, v := range benchkit.PromByLabel(m1, "onair_rtmp_refused_total") {
			if d := v - before[k]; d > 0 {
				r.Refused[strings.TrimSuffix(strings.TrimPrefix(k, `reason="`), `"`)] = d
			}
		}
	}
	if err := benchkit.SleepUntil(ctx, time.Now().Add(a.cfg.after)); err != nil {
		return r, err
	}
	_, rss, err := benchkit.GroupStat(pids)
	if err != nil {
		return r, err
	}
	r.RSSAfterMB = float64(rss) / benchkit.MB
	if err := n.Alive(); err != nil {
		return r, err
	}
	arrivals := players[0].Arrivals(t0)
	for _, at := range arrivals {
		if at >= from && at < to {
			r.Parts++
		}
	}
	r.LongestGapS, _ = benchkit.LongestGap(arrivals, from, to)
	r.PlayerErrors = players[0].ErrsIn(t0, from, to)
	perr := pub.Alive()
	r.PublisherLive = perr == nil && lerr == nil && live
	if perr != nil {
		r.PublisherNote = benchkit.Tail(perr.Error(), 300)
	} else if !r.PublisherLive {
		r.PublisherNote = fmt.Sprintf("room not live (%v)", lerr)
	}
	a.Logf("%s: RSS %.1f → peak %.1f MB (+%.1f), %.1f after; %d open at most; player: %d parts, longest gap %.2f s; publisher live: %v",
		c.name, r.RSSBaseMB, r.RSSPeakMB, r.GrowthMB(), r.RSSAfterMB, r.PeakOpen, r.Parts, r.LongestGapS, r.PublisherLive)
	return r, nil
}

// peakGauges are the gauges of onair's metrics whose highest value during an abuse the
// results keep: what it held open, and where its memory went (the Go runtime's).
var peakGauges = []string{"onair_chat_sockets", "onair_rtmp_connections", "go_goroutines",
	"go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes"}

// peakMetrics samples peakGauges every second until ctx ends and returns the highest of
// each.
func peakMetrics(ctx context.Context, n *benchkit.Node, client *http.Client) map[string]float64 {
	peak := map[string]float64{}
	for ctx.Err() == nil {
		if text, err := n.Metrics(ctx); err == nil {
			for _, name := range peakGauges {
				if v, ok := benchkit.PromValue(text, name); ok {
					peak[name] = max(peak[name], v)
				}
			}
		}
		_ = benchkit.SleepUntil(ctx, time.Now().Add(time.Second))
	}
	return peak
}

// measureTokens measures wrk's HLS load against one stream on a fresh node, its room
// switched between unlisted (served as a public room's media is: no token) and private
// (with a URL token, then with the playback cookie), in rounds that alternate the order.
func (a *abuseRun) measureTokens(ctx context.Context) error {
	n, err := a.startNode(ctx, "tokens")
	if err != nil {
		return err
	}
	defer n.Stop()
	api := a.api.At(n.HTTP)
	pub, err := benchkit.StartFFmpeg(a.stack.Input, n.PublishURL(a.keys[tokenRoom]))
	if err != nil {
		return err
	}
	defer pub.Stop(syscall.SIGTERM, 3*time.Second)
	var tok struct {
		HLSURL string `json:"hls_url"`
	}
	if err := api.Do(ctx, http.MethodPost, "/api/v1/rooms/"+tokenRoom+"/playback-tokens", map[string]int{"ttl_seconds": 3600}, &tok, http.StatusCreated); err != nil {
		return err
	}
	base, visibility := "/live/"+a.playbackID+"/", "private"
	// The URL token is where the API puts it, in the path: the playlists' relative URIs
	// resolve under it.
	tokenBase := path.Dir(tok.HLSURL) + "/"
	if _, err := benchkit.HTTPGetUntilFound(ctx, benchkit.NewHTTPClient(), n.HTTP+tok.HLSURL, 100*time.Millisecond); err != nil {
		return err
	}
	if err := benchkit.SleepUntil(ctx, time.Now().Add(a.cfg.warmup)); err != nil {
		return err
	}
	a.res.WrkCommand = "wrk " + strings.Join(a.cfg.wrk.Args("paths.lua", n.HTTP), " ")
	for round := range a.cfg.round {
		order := []string{tokenUnlisted, tokenURL, tokenCookie}
		if round%2 == 1 {
			order = []string{tokenCookie, tokenURL, tokenUnlisted}
		}
		var paths []string
		for _, variant := range order {
			if want := map[bool]string{true: "unlisted", false: "private"}[variant == tokenUnlisted]; want != visibility {
				if err := a.setVisibility(ctx, api, n, want); err != nil {
					return err
				}
				visibility = want
			}
			if paths == nil { // once per round: the newest segment stays in the DVR window meanwhile
				if err := api.Do(ctx, http.MethodPost, "/api/v1/rooms/"+tokenRoom+"/playback", nil, nil, http.StatusOK); err != nil {
					return err
				}
				if paths, err = live.OnairLoadPaths(ctx, api.HTTP, n.HTTP, a.playbackID); err != nil {
					return err
				}
				a.res.Paths = paths
			}
			opts := a.cfg.wrk
			switch variant {
			case tokenURL:
				for _, p := range paths {
					opts.Paths = append(opts.Paths, tokenBase+strings.TrimPrefix(p, base))
				}
			case tokenCookie:
				if err := api.Do(ctx, http.MethodPost, "/api/v1/rooms/"+tokenRoom+"/playback", nil, nil, http.StatusOK); err != nil {
					return err
				}
				opts.Paths, opts.Headers = paths, map[string]string{"Cookie": playbackCookie(api, n.HTTP+base)}
			default:
				opts.Paths = paths
			}
			run, err := a.wrkRun(ctx, n, opts)
			run.Round, run.Variant = round+1, variant
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, variant, err)
			}
			a.Logf("round %d, %s: %.0f requests per CPU second (%.0f requests/s)", round+1, variant, run.PerCPUS(), run.RPS)
			a.res.TokenRuns = append(a.res.TokenRuns, run)
		}
	}
	if err := pub.Alive(); err != nil {
		return err
	}
	return nil
}

// setVisibility switches the token room and waits until its media follows: a request
// without a token is refused once it is private, and served once it is unlisted.
func (a *abuseRun) setVisibility(ctx context.Context, api *benchkit.API, n *benchkit.Node, v string) error {
	if err := api.Do(ctx, http.MethodPatch, "/api/v1/rooms/"+tokenRoom, map[string]string{"visibility": v}, nil, http.StatusOK); err != nil {
		return err
	}
	want := map[string]int{"private": http.StatusForbidden, "unlisted": http.StatusOK}[v]
	return benchkit.Poll(ctx, 20*time.Second, 250*time.Millisecond, func(ctx context.Context) error {
		code, err := benchkit.HTTPStatus(ctx, http.DefaultClient, n.HTTP+"/live/"+a.playbackID+"/index.m3u8")
		if err != nil || code != want {
			return fmt.Errorf("room made %s: its playlist still answers %d (%v), want %d", v, code, err, want)
		}
		return nil
	})
}

// playbackCookie is the Cookie header a browser sends with the room's media requests.
func playbackCookie(api *benchkit.API, mediaURL string) string {
	u, _ := url.Parse(mediaURL)
	for _, c := range api.HTTP.Jar.Cookies(u) {
		if c.Name == "onair_play" {
			return c.Name + "=" + c.Value
		}
	}
	return ""
}

// wrkRun runs one wrk load against n and notes onair's CPU time over it.
func (a *abuseRun) wrkRun(ctx context.Context, n *benchkit.Node, opts benchkit.Wrk) (tokenRun, error) {
	var run tokenRun
	m := benchkit.StartMeter(n.Pid())
	w, err := opts.Run(ctx, a.Tmp, n.HTTP) // an error with any non-2xx answer or socket error
	if err != nil {
		return run, err
	}
	run.Requests, run.RPS, run.CPUSeconds, run.CPUPercent, run.MachineBusy = w.Requests, w.RPS, m.CPU(), m.Percent(), m.Busy()
	run.LatencyP50, run.LatencyP99 = w.LatencyP50, w.LatencyP99
	return run, n.Alive()
}
