package cluster

import (
	"fmt"
	"onair/scripts/bench/oldkit"
	"strings"
)

// clusterHLSSection renders the BENCHMARKS.md section of a cluster-hls run (without its
// markers).
func clusterHLSSection(r *clusterHLSResults) string {
	var b strings.Builder
	oldkit.RigSectionHead(&b, "Cluster: HLS viewers through a non-origin node", r.Command, r.Started, r.Finished, r.Machine, r.Onair)
	rec := "switched off (`PATCH … {\"recording\": false}`), so that S3 uploads stay out of the CPU figures"
	if r.Recording {
		rec = "on (to MinIO)"
	}
	fmt.Fprintf(&b, "Two onair nodes share one FerretDB and one MinIO, each with a fixed `ONAIR_HTTP_ADDR` and "+
		"`ONAIR_NODE_ADVERTISE_URL=http://127.0.0.1:<its port>`. One looping `ffmpeg -re -stream_loop -1 -i input.flv -c copy` "+
		"publisher sends the live benchmark's `%s` (%.0f kbit/s) to node A; the room's recording is %s. "+
		"The viewers are the live benchmark's many-viewers load, not a Go load of LL-HLS players: wrk's connections each "+
		"alternate between the stream's media playlist (as a player first loads it, without blocking parameters) and its "+
		"newest complete segment (%d bytes), against A directly and against B, which looks A up in MongoDB and fetches from it "+
		"(segments, parts and init files cached in memory; concurrent requests for one URL collapsed into one). Rounds "+
		"alternate A and B. wrk runs on the same cores as both nodes, so requests/s is bounded by the machine; CPU per "+
		"request (both nodes' CPU time over the requests served) is the comparable figure.\n\n",
		r.Input.File, r.Input.BitrateKbps, rec, r.SegmentBytes)
	if len(r.Paths) == 2 {
		fmt.Fprintf(&b, "Load: `%s` with paths `%s` and `%s`.\n\n", r.WrkCommand, r.Paths[0], r.Paths[1])
	}
	oldkit.RunErrors(&b, r.Errors)

	origin, proxy := clusterHLSTotals(r.Runs)
	b.WriteString("### Summary\n\n")
	pct := func(cpu, s float64) string { return oldkit.Fnum(100*oldkit.Ratio(cpu, s), 0) }
	rows := [][]string{
		{"requests/s", oldkit.Fnum(origin.RPS(), 0), oldkit.Fnum(proxy.RPS(), 0), oldkit.Fratio(oldkit.Ratio(proxy.RPS(), origin.RPS()))},
		{"node A CPU, % of a core", pct(origin.CPUA, origin.Seconds), pct(proxy.CPUA, proxy.Seconds), ""},
		{"node B CPU, % of a core", pct(origin.CPUB, origin.Seconds), pct(proxy.CPUB, proxy.Seconds), ""},
		{"CPU per request, both nodes (µs)", oldkit.Fnum(origin.CPUPerRequestUS(), 1), oldkit.Fnum(proxy.CPUPerRequestUS(), 1),
			oldkit.Fratio(oldkit.Ratio(proxy.CPUPerRequestUS(), origin.CPUPerRequestUS()))},
		{"HLS requests node A answered, per viewer request", oldkit.Fnum(oldkit.Ratio(float64(origin.Origin), float64(origin.Requests)), 3),
			oldkit.Fnum(oldkit.Ratio(float64(proxy.Origin), float64(proxy.Requests)), 3), ""},
		{"runs", fmt.Sprint(origin.Runs), fmt.Sprint(proxy.Runs), ""},
	}
	b.WriteString(oldkit.Table([]string{"", "viewers on A (origin)", "viewers on B (proxy)", "B / A"}, rows))
	b.WriteString("\nIssue 6 asks for these ratios without a threshold: requests/s through B against A (higher is better), " +
		"and total CPU per request through B against direct (lower is better; 1.00x would mean the proxy hop is free). " +
		"*HLS requests node A answered* comes from A's `onair_hls_requests_total`: every viewer request when the viewers are " +
		"on A; through B, only what B's segment cache and its collapsing of concurrent requests for one URL let through.\n")

	b.WriteString("\n### Runs\n\n")
	var runRows [][]string
	for _, x := range r.Runs {
		errs := fmt.Sprint(x.Non2xx)
		if x.SocketErrors != "" {
			errs += "; " + x.SocketErrors
		}
		runRows = append(runRows, []string{fmt.Sprint(x.Round), x.Via, oldkit.Fnum(x.RPS, 0),
			fmt.Sprintf("%s (%s)", oldkit.Fnum(x.CPUAPercent, 0), oldkit.Fnum(x.IdleAPct, 1)),
			fmt.Sprintf("%s (%s)", oldkit.Fnum(x.CPUBPercent, 0), oldkit.Fnum(x.IdleBPct, 1)),
			oldkit.Fnum(oldkit.Ratio(1e6*(x.CPUA+x.CPUB), float64(x.Requests)), 1), fmt.Sprint(x.OriginRequests),
			x.LatencyP50 + " / " + x.LatencyP99, x.Transfer, errs, oldkit.Fnum(x.MachineBusy, 0)})
	}
	b.WriteString(oldkit.Table([]string{"round", "viewers on", "requests/s", "A CPU % (idle before)", "B CPU % (idle before)",
		"µs CPU per request", "requests A answered", "latency p50 / p99", "transfer/s", "non-2xx; socket errors", "machine busy %"}, runRows))
	return b.String()
}
