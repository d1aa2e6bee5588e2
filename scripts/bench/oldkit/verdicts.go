package oldkit

// Server names as reported.
const (
	NameOnair = "onair"
	NameNginx = "nginx-rtmp"
)

// Targets of the live benchmark (see BENCHMARKS.md).
const (
	TargetLatencyRatio     = 0.1   // onair median latency / nginx-rtmp's
	TargetLatencyMedianMS  = 300   // the absolute reading of that ratio
	TargetLatencyP95MS     = 500   // onair p95 latency, absolute
	TargetFirstFrameMS     = 1500  // onair first playable frame, absolute
	TargetCPUPerStreamRat  = 1.0   // onair CPU per stream at the most publishers / nginx-rtmp's
	TargetRSSPerStreamMB   = 5.0   // onair memory per live stream, absolute
	TargetReqPerCPURatio   = 0.8   // onair requests per CPU second / nginx-rtmp's
	TargetPublishersForCPU = 40    // the load level the CPU and memory targets apply to
	NotMeasured            = "n/a" // a figure of a phase that failed
)

func Verdict(ok, measured bool) string {
	switch {
	case !measured:
		return "not measured"
	case ok:
		return "met"
	default:
		return "**not met**"
	}
}
