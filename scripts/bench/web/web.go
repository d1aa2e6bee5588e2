// Package web is `bench web`: onair with FerretDB, one live room, and the room page
// loaded by web/ui/e2e/bench.mjs in headless Chromium for its weight and its time to the
// first video frame.
package web

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"onair/scripts/bench/benchkit"
)

// targetFirstFrameMS is the target from room page opened to first video frame.
const targetFirstFrameMS = 1500

const room = "web-bench"

type results struct {
	benchkit.Head
	Chromium    string         `json:"chromium"`
	Input       benchkit.Input `json:"input"`
	PageCommand string         `json:"page_command"`
	Page        *page          `json:"page,omitempty"`
}

// page is what web/ui/e2e/bench.mjs prints.
type page struct {
	FirstFrameMS struct {
		Median, Min, Max float64
		All              []float64
	} `json:"first_frame_ms"`
	PageBytes              int64 `json:"page_bytes"`
	MediaBytesToFirstFrame int64 `json:"media_bytes_to_first_frame"`
	Files                  []struct {
		URL      string `json:"url"`
		Bytes    int64  `json:"bytes"`
		Encoding string `json:"encoding"`
	} `json:"files"`
}

// Run is `bench web`.
func Run(ctx context.Context, env benchkit.Env, args []string) error {
	r, res := benchkit.NewRun(env), &results{}
	return r.Main(ctx, args, &res.Head, res, func() error { return measure(ctx, r, res) }, func() string { return section(res) })
}

// measure loads the page 5 times, each in a fresh browser context, once the room has been
// live for 3 s.
func measure(ctx context.Context, r *benchkit.Run, res *results) error {
	const runs, warmup, node = 5, 3 * time.Second, "node"
	browser, err := benchkit.FindBrowser(ctx, r.Root)
	if err != nil {
		return err
	}
	res.Chromium = browser.Version
	input, in, err := benchkit.PrepareInput(ctx, r)
	if err != nil {
		return err
	}
	res.Input = in
	mongo, err := benchkit.StartMongo(ctx, r.Root, filepath.Join(r.Tmp, "mongo"))
	if err != nil {
		return err
	}
	defer mongo.Stop()
	n, err := benchkit.StartNode(ctx, benchkit.NodeOptions{Binary: r.Bin, Indexes: true, Env: benchkit.MongoEnv(filepath.Join(r.Tmp, "data"), mongo.URI, "info")})
	if err != nil {
		return err
	}
	defer n.Stop()
	api, keys, err := benchkit.Account(ctx, n.HTTP, room)
	if err != nil {
		return err
	}
	pub, err := api.PublishLive(ctx, input, n, room, keys[room])
	if err != nil {
		return err
	}
	defer pub.Stop(syscall.SIGTERM, 3*time.Second)
	if err := benchkit.SleepUntil(ctx, time.Now().Add(warmup)); err != nil {
		return err
	}
	res.PageCommand = fmt.Sprintf("node web/ui/e2e/bench.mjs --url http://127.0.0.1:<port>/rooms/%s --runs %d", room, runs)
	r.Logf("room page: %s", res.PageCommand)
	// bench.mjs runs in a process group of its own, the browser with it.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(runs)*30*time.Second+time.Minute)
	defer cancel()
	cmd := browser.Script(ctx, node, "bench.mjs", []string{"--url", n.HTTP + "/rooms/" + room, "--runs", strconv.Itoa(runs)})
	stderr := &benchkit.TailBuffer{Max: 16 << 10}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	_ = benchkit.KillGroup(cmd) // whatever it left behind
	var p page
	if err == nil {
		err = json.Unmarshal(out, &p)
	}
	switch {
	case err != nil:
		return fmt.Errorf("bench.mjs: %w: %s", err, stderr)
	case len(p.FirstFrameMS.All) != runs || p.PageBytes <= 0 || len(p.Files) == 0:
		return fmt.Errorf("bench.mjs: %d first-frame times for %d runs, %d page bytes", len(p.FirstFrameMS.All), runs, p.PageBytes)
	}
	res.Page = &p
	r.Logf("  first frame median %.0f ms (%s), page %d bytes", p.FirstFrameMS.Median, benchkit.Join(p.FirstFrameMS.All, 0), p.PageBytes)
	if err := pub.Alive(); err != nil {
		return fmt.Errorf("the publisher exited during the page loads: %w", err)
	}
	return n.Alive()
}

func section(r *results) string {
	b := r.Section("Web: room page weight and time to the first frame")
	fmt.Fprintf(b, "Browser: %s, headless, driven by playwright-core (`web/ui/e2e/browser.mjs`'s flags).\n\n"+
		"onair runs with FerretDB; one room is created through the API and published by a looping `ffmpeg -re -stream_loop -1 -i input.flv -c copy` "+
		"with `%s` (%.0f kbit/s). Once the room is live, `%s` loads the room page, each run in a fresh browser context with the cache disabled: "+
		"*page weight* is the bytes on the wire (compressed, headers included) of the first load; *first frame* is from the start of navigation "+
		"to the first video frame presented (requestVideoFrameCallback).\n\n", strings.TrimSpace(r.Chromium), r.Input.File, r.Input.BitrateKbps, r.PageCommand)
	p := r.Page
	if p == nil {
		return b.String()
	}
	ff := p.FirstFrameMS
	b.WriteString("### Targets\n\n" + benchkit.Table([]string{"measure", "figure", "target", "verdict"},
		[]string{fmt.Sprintf("room page opened → first video frame (median of %d)", len(ff.All)),
			fmt.Sprintf("%s ms (min %s, max %s)", benchkit.F(ff.Median, 0), benchkit.F(ff.Min, 0), benchkit.F(ff.Max, 0)),
			fmt.Sprintf("under %d ms on loopback", targetFirstFrameMS), benchkit.Verdict(ff.Median < targetFirstFrameMS, true)},
		[]string{"page weight, first load (compressed)", fmt.Sprintf("%d bytes (%.1f KiB)", p.PageBytes, float64(p.PageBytes)/1024), "reported", "—"}))
	fmt.Fprintf(b, "\nRuns (ms): %s. Media fetched until the first frame (playlists, init, parts): %d bytes.\n\n### Files of the first load\n\n",
		benchkit.Join(ff.All, 0), p.MediaBytesToFirstFrame)
	var rows [][]string
	for _, f := range p.Files {
		rows = append(rows, []string{"`" + f.URL + "`", fmt.Sprint(f.Bytes), map[bool]string{true: "none", false: f.Encoding}[f.Encoding == ""]})
	}
	b.WriteString(benchkit.Table([]string{"file", "bytes on the wire", "content encoding"}, append(rows, []string{"**total**", fmt.Sprint(p.PageBytes), ""})...))
	return b.String()
}
