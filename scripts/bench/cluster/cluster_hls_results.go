package cluster

import (
	"onair/scripts/bench/oldkit"
)

// Which node the viewers' requests go to.
const (
	viaOrigin = "A (origin)"
	viaProxy  = "B (proxies to A)"
)

// clusterHLSResults is everything `bench cluster-hls` measured; it is written as JSON to
// .artifacts/bench/cluster-hls.json and summarised in BENCHMARKS.md.
type clusterHLSResults struct {
	Command  string             `json:"command"`
	Started  string             `json:"started"`
	Finished string             `json:"finished"`
	Machine  oldkit.MachineInfo `json:"machine"`
	Onair    oldkit.BinaryInfo  `json:"onair"`
	Input    oldkit.InputInfo   `json:"input"`
	// Recording tells whether the room recorded (to MinIO) during the loads.
	Recording    bool     `json:"recording"`
	Paths        []string `json:"paths"`
	SegmentBytes int      `json:"segment_bytes"`
	// WrkCommand is the load, the same against both nodes but for the base URL.
	WrkCommand string          `json:"wrk_command"`
	Runs       []clusterHLSRun `json:"runs"`
	Errors     []string        `json:"errors,omitempty"`
}

// clusterHLSRun is one wrk load against one node, with both nodes' CPU meanwhile.
type clusterHLSRun struct {
	Round        int     `json:"round"`
	Via          string  `json:"via"`
	Base         string  `json:"base"`
	Requests     int64   `json:"requests"`
	Seconds      float64 `json:"seconds"`
	RPS          float64 `json:"requests_per_s"`
	Non2xx       int64   `json:"non_2xx"`
	SocketErrors string  `json:"socket_errors,omitempty"`
	LatencyP50   string  `json:"latency_p50"`
	LatencyP99   string  `json:"latency_p99"`
	Transfer     string  `json:"transfer_per_s"`
	// OriginRequests is how many HLS requests node A's own HLS server answered during the
	// load (onair_hls_requests_total): all of them direct, the proxy's misses through B.
	OriginRequests int64 `json:"origin_requests"`
	// CPU seconds and % of a core of each node over the load; Idle* over the 3 s before.
	CPUA        float64 `json:"cpu_a_s"`
	CPUB        float64 `json:"cpu_b_s"`
	CPUAPercent float64 `json:"cpu_a_pct_of_core"`
	CPUBPercent float64 `json:"cpu_b_pct_of_core"`
	IdleAPct    float64 `json:"idle_cpu_a_pct_of_core"`
	IdleBPct    float64 `json:"idle_cpu_b_pct_of_core"`
	MachineBusy float64 `json:"machine_busy_pct"`
}

// clusterHLSTotal sums the runs through one node.
type clusterHLSTotal struct {
	Via      string
	Runs     int
	Requests int64
	Origin   int64 // requests A's HLS server answered
	Seconds  float64
	CPUA     float64
	CPUB     float64
}

func (t clusterHLSTotal) RPS() float64 { return oldkit.Ratio(float64(t.Requests), t.Seconds) }

// CPUPerRequestUS is both nodes' CPU time per request, in microseconds.
func (t clusterHLSTotal) CPUPerRequestUS() float64 {
	return oldkit.Ratio(1e6*(t.CPUA+t.CPUB), float64(t.Requests))
}

// clusterHLSTotals sums runs by node: through the origin, then through the proxy.
func clusterHLSTotals(runs []clusterHLSRun) (origin, proxy clusterHLSTotal) {
	origin.Via, proxy.Via = viaOrigin, viaProxy
	for _, r := range runs {
		t := &origin
		if r.Via == viaProxy {
			t = &proxy
		}
		t.Runs++
		t.Requests += r.Requests
		t.Origin += r.OriginRequests
		t.Seconds += r.Seconds
		t.CPUA += r.CPUA
		t.CPUB += r.CPUB
	}
	return origin, proxy
}
