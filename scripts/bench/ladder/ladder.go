// Package ladder is `bench ladder`: what a simulcast ladder (renditions published as
// ?rendition=<name>, nothing transcoded) costs onair per delivered byte against one
// rendition at the same total bit rate, and how fast hls.js in Chromium switches down the
// ladder when the network narrows (web/ui/e2e/ladder-switch.mjs).
package ladder

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"onair/scripts/bench/benchkit"
)

// targetRatio is issue 14's bound on the ladder's CPU per delivered byte against a single
// rendition.
const targetRatio = 1.2

const stream = "ladder"

// rung is one rendition: its name ("" for the main), size and video bit rate.
type rung struct {
	Name string `json:"name"`
	Size string `json:"size"`
	Kbps int    `json:"video_kbps"`
}

// The two configurations: the same total video bit rate, once as one rendition and once
// as a three-rung ladder.
var (
	single = []rung{{"", "1280x720", 3000}}
	ladder = []rung{{"", "1280x720", 1800}, {"480p", "854x480", 800}, {"240p", "426x240", 400}}
)

type results struct {
	benchkit.Head
	Encode    string   `json:"encode"`
	Viewers   int      `json:"viewers_per_rendition"`
	WarmupS   float64  `json:"warmup_s"`
	Single    *cost    `json:"single,omitempty"`
	Ladder    *cost    `json:"ladder,omitempty"`
	Chromium  string   `json:"chromium"`
	SwitchCmd string   `json:"switch_command"`
	Switch    *switchs `json:"switch,omitempty"`
}

// cost is one configuration's run.
type cost struct {
	Rungs          []rung  `json:"rungs"`
	Players        int     `json:"players"`
	DeliveredBytes int64   `json:"delivered_bytes"`
	BaseRSS        uint64  `json:"rss_before_publish"`
	Busy           float64 `json:"machine_busy_pct"`
	benchkit.Usage
}

// CPUPerMB is onair's CPU seconds per delivered MB.
func (c *cost) CPUPerMB() float64 {
	return benchkit.Ratio(c.CPUSeconds, float64(c.DeliveredBytes)/benchkit.MB)
}

// RSSPerRendition is onair's mean RSS above what it held before the publish, per
// rendition, in MB.
func (c *cost) RSSPerRendition() float64 {
	return benchkit.Ratio((float64(c.RSSMean)-float64(c.BaseRSS))/benchkit.MB, float64(len(c.Rungs)))
}

// switchs is what ladder-switch.mjs prints.
type switchs struct {
	ThrottleKbps int `json:"throttle_kbps"`
	Levels       []struct {
		Name string `json:"name"`
	} `json:"levels"`
	Runs []struct {
		DownMS   *float64 `json:"down_ms"`
		LowestMS *float64 `json:"lowest_ms"`
		UpMS     *float64 `json:"up_ms"`
	} `json:"runs"`
}

// Run is `bench ladder`.
func Run(ctx context.Context, env benchkit.Env, args []string) error {
	r := benchkit.NewRun(env)
	viewers := r.Flags.Int("viewers", 10, "LL-HLS players per rendition")
	warmup := r.Flags.Duration("warmup", 10*time.Second, "publishing and playing before the window")
	window := r.Flags.Duration("window", 45*time.Second, "measure CPU and delivered bytes this long")
	runs := r.Flags.Int("switch-runs", 3, "throttled switches in Chromium (0: none)")
	throttle := r.Flags.Int("throttle-kbps", 700, "the throttled network, kbit/s: under the second rung's need, over the lowest's")
	node := r.Flags.String("node", "node", "Node.js binary that runs web/ui/e2e/ladder-switch.mjs")
	res := &results{Viewers: *viewers}
	if err := r.Start(ctx, args, &res.Head); err != nil {
		return err
	}
	defer r.Close()
	res.Viewers, res.WarmupS = *viewers, warmup.Seconds()
	inputs, err := encode(ctx, r, res)
	if err != nil {
		r.Fail(err)
		return r.Finish(ctx, res, func() string { return section(res) })
	}
	for _, c := range []struct {
		rungs []rung
		out   **cost
	}{{single, &res.Single}, {ladder, &res.Ladder}} {
		var after func(n *benchkit.Node) error
		if len(c.rungs) > 1 && *runs > 0 {
			after = func(n *benchkit.Node) error { return switchDown(ctx, r, res, n, *node, *runs, *throttle) }
		}
		cst, err := measure(ctx, r, inputs, c.rungs, *viewers, *warmup, *window, after)
		if err != nil {
			r.Fail(fmt.Errorf("%d rendition(s): %w", len(c.rungs), err))
		}
		*c.out = cst
	}
	return r.Finish(ctx, res, func() string { return section(res) })
}

// encode makes each rung's input once (kept in the output directory): 20 s of test
// pattern with a key frame every 30 frames in every file, so that the renditions' key
// frames line up as an encoder with several outputs sends them.
func encode(ctx context.Context, r *benchkit.Run, res *results) (map[string]string, error) {
	args := strings.Fields("-hide_banner -loglevel error -nostdin -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000")
	paths := map[string]string{}
	var missing bool
	for _, g := range append(append([]rung{}, single...), ladder...) {
		p := filepath.Join(r.Out, fmt.Sprintf("ladder-%s-%dk.flv", g.Size, g.Kbps))
		paths[g.Size+strconv.Itoa(g.Kbps)] = p
		if _, err := os.Stat(p); err != nil {
			missing = true
		}
		rate := strconv.Itoa(g.Kbps) + "k"
		args = append(args, strings.Fields("-map 0:v -map 1:a -t 20 -s "+g.Size+" -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p "+
			"-g 30 -keyint_min 30 -sc_threshold 0 -b:v "+rate+" -maxrate "+rate+" -bufsize "+rate+" -c:a aac -b:a 96k -ar 48000 -ac 2 -f flv "+p)...)
	}
	res.Encode = "ffmpeg " + strings.Join(args, " ")
	res.Encode = strings.ReplaceAll(res.Encode, r.Out+"/", "")
	if !missing {
		return paths, nil
	}
	r.Logf("encoding the inputs")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	cmd.SysProcAttr = benchkit.ChildAttr()
	if out, err := cmd.CombinedOutput(); err != nil {
		for _, p := range paths {
			_ = os.Remove(p)
		}
		return nil, fmt.Errorf("encode the inputs: %w: %s", err, out)
	}
	return paths, nil
}

// measure starts onair, one ffmpeg sending every rung's input with -c copy, viewers per
// rendition, and measures onair over window; after, when set, runs on the same node once
// the viewers have left.
func measure(ctx context.Context, r *benchkit.Run, inputs map[string]string, rungs []rung, viewers int,
	warmup, window time.Duration, after func(*benchkit.Node) error) (*cost, error) {
	key := fmt.Sprintf("ladder-bench-key-%d", len(rungs))
	n, err := benchkit.StartNode(ctx, benchkit.NodeOptions{Binary: r.Bin, Env: []string{
		"ONAIR_DATA_DIR=" + filepath.Join(r.Tmp, fmt.Sprintf("data-%d", len(rungs))), "ONAIR_LOG_LEVEL=warn",
		fmt.Sprintf("ONAIR_STREAMS=[{key: %q, name: %q}]", key, stream)}})
	if err != nil {
		return nil, err
	}
	defer n.Stop()
	c := &cost{Rungs: rungs, BaseRSS: benchkit.RSS(n.Pid())}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin"}
	for _, g := range rungs {
		args = append(args, "-re", "-stream_loop", "-1", "-i", inputs[g.Size+strconv.Itoa(g.Kbps)])
	}
	for i, g := range rungs {
		u := n.PublishURL(key)
		if g.Name != "" {
			u += "?rendition=" + g.Name
		}
		args = append(args, "-map", strconv.Itoa(i), "-c", "copy", "-f", "flv", u)
	}
	pub, err := benchkit.StartProcess("ffmpeg", exec.Command("ffmpeg", args...))
	if err != nil {
		return nil, err
	}
	defer pub.Stop(syscall.SIGTERM, 3*time.Second)
	index := n.HTTP + "/live/" + stream + "/index.m3u8"
	if err := waitVariants(ctx, index, len(rungs)); err != nil {
		return nil, fmt.Errorf("%w (ffmpeg: %s)", err, benchkit.Tail(pub.Output(), 500))
	}
	var delivered atomic.Int64
	vctx, stop := context.WithCancel(ctx)
	wait := play(vctx, index, len(rungs), viewers, &delivered)
	c.Players = viewers * len(rungs)
	r.Logf("%d rendition(s) published, %d players; warming up %s, measuring %s", len(rungs), c.Players, warmup, window)
	err = benchkit.SleepUntil(ctx, time.Now().Add(warmup))
	if err == nil {
		b0, m := delivered.Load(), benchkit.StartMeter()
		c.Usage, err = benchkit.MeasureUsage(ctx, []int{n.Pid()}, window, time.Second)
		c.DeliveredBytes, c.Busy = delivered.Load()-b0, m.Busy()
	}
	stop()
	wait()
	if err != nil {
		return nil, err
	}
	r.Logf("  onair %.1f CPU s for %.1f MB delivered: %.3f CPU s/MB, RSS %.1f MB (%.1f before the publish), machine busy %.0f %%",
		c.CPUSeconds, float64(c.DeliveredBytes)/benchkit.MB, c.CPUPerMB(), float64(c.RSSMean)/benchkit.MB, float64(c.BaseRSS)/benchkit.MB, c.Busy)
	if err := pub.Alive(); err != nil {
		return c, fmt.Errorf("the publisher exited: %w", err)
	}
	if after != nil {
		if err := after(n); err != nil {
			return c, err
		}
	}
	return c, n.Alive()
}

// waitVariants waits until the multivariant playlist index lists n renditions.
func waitVariants(ctx context.Context, index string, n int) error {
	return benchkit.Poll(ctx, 30*time.Second, 250*time.Millisecond, func(ctx context.Context) error {
		body, _, err := benchkit.HTTPGet(ctx, http.DefaultClient, index)
		var mv playlist.Multivariant
		if err = cmp.Or(err, mv.Unmarshal(body)); err != nil || len(mv.Variants) != n {
			return fmt.Errorf("%s: %d of %d renditions listed within 30 s (%v)", index, len(mv.Variants), n, err)
		}
		return nil
	})
}

// play starts viewers players of each of the n renditions of the multivariant playlist
// index, all counting the bytes they receive into delivered; the returned func waits for
// them once ctx ends.
func play(ctx context.Context, index string, n, viewers int, delivered *atomic.Int64) func() {
	var wg sync.WaitGroup
	for i := range n {
		for range viewers {
			client := benchkit.NewHTTPClient()
			client.Transport = counting{client.Transport, delivered}
			p := &benchkit.Player{Client: client, URL: index, Variant: i, Retry: 250 * time.Millisecond}
			wg.Go(func() {
				for ctx.Err() == nil {
					var log benchkit.FetchLog // a log per join, so that it stays small
					_ = p.Run(ctx, &log)
					_ = benchkit.SleepUntil(ctx, time.Now().Add(250*time.Millisecond))
				}
				client.CloseIdleConnections()
			})
		}
	}
	return wg.Wait
}

// counting counts the response body bytes its client reads.
type counting struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (c counting) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(req)
	if err == nil {
		resp.Body = &countedBody{resp.Body, c.n}
	}
	return resp, err
}

type countedBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countedBody) Read(p []byte) (int, error) {
	k, err := b.ReadCloser.Read(p)
	b.n.Add(int64(k))
	return k, err
}

// switchDown runs web/ui/e2e/ladder-switch.mjs against the ladder on n.
func switchDown(ctx context.Context, r *benchkit.Run, res *results, n *benchkit.Node, node string, runs, kbps int) error {
	browser, err := benchkit.FindBrowser(ctx, r.Root)
	if err != nil {
		return err
	}
	res.Chromium = browser.Version
	res.SwitchCmd = fmt.Sprintf("ONAIR_URL=http://127.0.0.1:<port> STREAM=%s RUNS=%d THROTTLE_KBPS=%d node web/ui/e2e/ladder-switch.mjs", stream, runs, kbps)
	r.Logf("switch down: %s", res.SwitchCmd)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(runs)*4*time.Minute)
	defer cancel()
	cmd := browser.Script(ctx, node, "ladder-switch.mjs", nil,
		"ONAIR_URL="+n.HTTP, "STREAM="+stream, "RUNS="+strconv.Itoa(runs), "THROTTLE_KBPS="+strconv.Itoa(kbps))
	stderr := &benchkit.TailBuffer{Max: 16 << 10}
	cmd.Stderr = io.MultiWriter(stderr, r.Stderr)
	out, err := cmd.Output()
	_ = benchkit.KillGroup(cmd) // a browser whose parent died
	var s switchs
	if err == nil {
		err = json.Unmarshal(out, &s)
	}
	if err != nil {
		return fmt.Errorf("ladder-switch.mjs: %w: %s", err, stderr)
	}
	if len(s.Runs) != runs {
		return fmt.Errorf("ladder-switch.mjs: %d runs of %d", len(s.Runs), runs)
	}
	res.Switch = &s
	return nil
}
