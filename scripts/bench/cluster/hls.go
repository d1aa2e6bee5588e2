// Package cluster is `bench cluster-hls` (HLS viewers through a node that proxies from
// the origin, against the origin) and `bench cluster-churn` (nodes restarted in turn
// under publishers and players, then one node behind the CDN example).
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"onair/scripts/bench/benchkit"
	"onair/scripts/bench/live"
)

const (
	hlsRoom   = "hls"
	viaOrigin = "A (origin)"
	viaProxy  = "B (proxies to A)"
)

type hlsResults struct {
	benchkit.Head
	Input        benchkit.Input `json:"input"`
	Recording    bool           `json:"recording"`
	Paths        []string       `json:"paths"`
	SegmentBytes int            `json:"segment_bytes"`
	WrkCommand   string         `json:"wrk_command"`
	Runs         []hlsRun       `json:"runs"`
}

// hlsRun is one wrk load through one node: both nodes' CPU over it (and idle before),
// and the HLS requests node A answered (its onair_hls_requests_total).
type hlsRun struct {
	Round int
	Via   string
	benchkit.WrkResult
	OriginRequests           int64
	CPUA, CPUB               float64 // seconds
	CPUAPercent, CPUBPercent float64
	IdleAPct, IdleBPct       float64
	MachineBusy              float64
}

// RunHLS is `bench cluster-hls`: two nodes on one FerretDB and MinIO, a publisher on A,
// wrk's viewers on A and on B in alternating rounds.
func RunHLS(ctx context.Context, env benchkit.Env, args []string) error {
	// Recording stays off, so that S3 uploads stay out of the CPU figures.
	r, res := benchkit.NewRun(env), &hlsResults{}
	w := benchkit.Wrk{Connections: 100, Threads: 2, Duration: 15 * time.Second}
	var stack benchkit.Stack
	defer stack.Stop()
	return r.Main(ctx, args, &res.Head, res, func() error { return measureHLS(ctx, r, res, &stack, w) }, func() string { return hlsSection(res) })
}

// measureHLS runs two rounds of (load through the origin A, load through B), alternating
// so that both meet the same disturbances, after 8 s of publishing.
func measureHLS(ctx context.Context, r *benchkit.Run, res *hlsResults, stack *benchkit.Stack, w benchkit.Wrk) error {
	const rounds, warmup = 2, 8 * time.Second
	if err := stack.Launch(ctx, r, &res.Input); err != nil {
		return err
	}
	var nodes []*benchkit.Node
	for _, name := range []string{"a", "b"} {
		addr := fmt.Sprintf("127.0.0.1:%d", benchkit.FreePort())
		n, err := stack.Node(ctx, r, name, "ONAIR_HTTP_ADDR="+addr, "ONAIR_NODE_ADVERTISE_URL=http://"+addr)
		if err != nil {
			return fmt.Errorf("node %s: %w", strings.ToUpper(name), err)
		}
		defer n.Stop()
		nodes = append(nodes, n)
	}
	a, b := nodes[0], nodes[1]
	api, keys, err := benchkit.Account(ctx, a.HTTP, hlsRoom)
	if err == nil && !res.Recording {
		err = api.SetRecording(ctx, hlsRoom, false)
	}
	if err != nil {
		return err
	}
	pub, err := api.PublishLive(ctx, stack.Input, a, hlsRoom, keys[hlsRoom])
	if err != nil {
		return err
	}
	defer pub.Stop(syscall.SIGTERM, 3*time.Second)
	if err := benchkit.SleepUntil(ctx, time.Now().Add(warmup)); err != nil {
		return err
	}
	client := benchkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	if res.Paths, err = live.OnairLoadPaths(ctx, client, a.HTTP, hlsRoom); err != nil {
		return err
	}
	segA, _, err := benchkit.HTTPGet(ctx, client, a.HTTP+res.Paths[1])
	if err != nil {
		return err
	}
	segB, _, err := benchkit.HTTPGet(ctx, client, b.HTTP+res.Paths[1])
	if err == nil && !bytes.Equal(segA, segB) {
		err = fmt.Errorf("node B served %d bytes for %s, node A %d", len(segB), res.Paths[1], len(segA))
	}
	if err != nil {
		return fmt.Errorf("through node B: %w", err)
	}
	res.SegmentBytes, w.Paths = len(segA), res.Paths
	res.WrkCommand = "wrk " + strings.Join(w.Args("paths.lua", "http://<node>"), " ")
	for round := 1; round <= rounds && ctx.Err() == nil; round++ {
		for _, via := range []string{viaOrigin, viaProxy} {
			run := hlsRun{Round: round, Via: via}
			base := map[string]string{viaOrigin: a.HTTP, viaProxy: b.HTTP}[via]
			ma, mb := benchkit.StartMeter(a.Pid()), benchkit.StartMeter(b.Pid())
			if err := benchkit.SleepUntil(ctx, time.Now().Add(3*time.Second)); err != nil {
				return err
			}
			run.IdleAPct, run.IdleBPct = ma.Percent(), mb.Percent()
			m0, err := a.Metrics(ctx)
			if err != nil {
				return err
			}
			ma, mb = benchkit.StartMeter(a.Pid()), benchkit.StartMeter(b.Pid())
			if run.WrkResult, err = w.Run(ctx, r.Tmp, base); err == nil {
				err = errors.Join(a.Alive(), b.Alive(), pub.Alive())
			}
			if err != nil {
				return fmt.Errorf("round %d via %s: %w", round, via, err)
			}
			run.MachineBusy, run.CPUA, run.CPUB, run.CPUAPercent, run.CPUBPercent = ma.Busy(), ma.CPU(), mb.CPU(), ma.Percent(), mb.Percent()
			m1, err := a.Metrics(ctx)
			if err != nil {
				return err
			}
			run.OriginRequests = int64(promSum(m1) - promSum(m0))
			r.Logf("round %d via %s: %.0f requests/s; CPU A %.0f %%, B %.0f %% of a core", round, via, run.RPS, run.CPUAPercent, run.CPUBPercent)
			res.Runs = append(res.Runs, run)
		}
	}
	return nil
}

// promSum adds up every sample of onair_hls_requests_total.
func promSum(text string) float64 {
	var sum float64
	for _, v := range benchkit.PromByLabel(text, "onair_hls_requests_total") {
		sum += v
	}
	return sum
}

func hlsSection(r *hlsResults) string {
	f := benchkit.F
	b := r.Section("Cluster: HLS viewers through a non-origin node")
	rec := map[bool]string{false: "switched off (`PATCH … {\"recording\": false}`), so that S3 uploads stay out of the CPU figures", true: "on (to MinIO)"}[r.Recording]
	fmt.Fprintf(b, "Two onair nodes share one FerretDB and one MinIO, each with a fixed `ONAIR_HTTP_ADDR` and `ONAIR_NODE_ADVERTISE_URL`. One looping "+
		"`ffmpeg -re -stream_loop -1 -i input.flv -c copy` publisher sends `%s` (%.0f kbit/s) to node A; the room's recording is %s. wrk's "+
		"connections each alternate between the stream's media playlist and its newest complete segment (%d bytes), against A directly and "+
		"against B, which looks A up in MongoDB and fetches from it (segments, parts and init files cached in memory; concurrent requests for "+
		"one URL collapsed into one). Rounds alternate A and B. wrk runs on the same cores as both nodes, so CPU per request (both nodes' CPU "+
		"time over the requests served) is the comparable figure.\n\n", r.Input.File, r.Input.BitrateKbps, rec, r.SegmentBytes)
	if len(r.Paths) == 2 {
		fmt.Fprintf(b, "Load: `%s` with paths `%s` and `%s`.\n\n", r.WrkCommand, r.Paths[0], r.Paths[1])
	}
	type total struct {
		runs                int
		requests, origin    int64
		seconds, cpuA, cpuB float64
	}
	var t [2]total
	var rows [][]string
	for _, x := range r.Runs {
		i := map[bool]int{false: 0, true: 1}[x.Via == viaProxy]
		t[i].runs, t[i].requests, t[i].origin = t[i].runs+1, t[i].requests+x.Requests, t[i].origin+x.OriginRequests
		t[i].seconds, t[i].cpuA, t[i].cpuB = t[i].seconds+x.Seconds, t[i].cpuA+x.CPUA, t[i].cpuB+x.CPUB
		rows = append(rows, []string{fmt.Sprint(x.Round), x.Via, f(x.RPS, 0), fmt.Sprintf("%s (%s)", f(x.CPUAPercent, 0), f(x.IdleAPct, 1)),
			fmt.Sprintf("%s (%s)", f(x.CPUBPercent, 0), f(x.IdleBPct, 1)), f(benchkit.Ratio(1e6*(x.CPUA+x.CPUB), float64(x.Requests)), 1), fmt.Sprint(x.OriginRequests),
			x.LatencyP50 + " / " + x.LatencyP99, x.BytesPerSec, fmt.Sprint(x.Non2xx), f(x.MachineBusy, 0)})
	}
	rps := func(t total) float64 { return benchkit.Ratio(float64(t.requests), t.seconds) }
	perReq := func(t total) float64 { return benchkit.Ratio(1e6*(t.cpuA+t.cpuB), float64(t.requests)) }
	pct := func(cpu, s float64) string { return f(100*benchkit.Ratio(cpu, s), 0) }
	o, p := t[0], t[1]
	b.WriteString("### Summary\n\n" + benchkit.Table([]string{"", "viewers on A (origin)", "viewers on B (proxy)", "B / A"},
		[]string{"requests/s", f(rps(o), 0), f(rps(p), 0), benchkit.X(benchkit.Ratio(rps(p), rps(o)))},
		[]string{"node A CPU, % of a core", pct(o.cpuA, o.seconds), pct(p.cpuA, p.seconds), ""},
		[]string{"node B CPU, % of a core", pct(o.cpuB, o.seconds), pct(p.cpuB, p.seconds), ""},
		[]string{"CPU per request, both nodes (µs)", f(perReq(o), 1), f(perReq(p), 1), benchkit.X(benchkit.Ratio(perReq(p), perReq(o)))},
		[]string{"HLS requests node A answered, per viewer request", f(benchkit.Ratio(float64(o.origin), float64(o.requests)), 3),
			f(benchkit.Ratio(float64(p.origin), float64(p.requests)), 3), ""},
		[]string{"runs", fmt.Sprint(o.runs), fmt.Sprint(p.runs), ""}))
	b.WriteString("\nReported without a threshold: requests/s through B against A (higher is better), and total CPU per request through B against " +
		"direct (lower is better; 1.00x would mean the proxy hop is free).\n\n### Runs\n\n")
	b.WriteString(benchkit.Table([]string{"round", "viewers on", "requests/s", "A CPU % (idle before)", "B CPU % (idle before)",
		"µs CPU per request", "requests A answered", "latency p50 / p99", "transfer/s", "non-2xx; socket errors", "machine busy %"}, rows...))
	return b.String()
}
