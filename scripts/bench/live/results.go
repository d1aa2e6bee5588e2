package live

import (
	"onair/scripts/bench/oldkit"
)

// liveResults is everything `bench live` measured; it is written as JSON to
// .artifacts/bench/live.json and summarised in BENCHMARKS.md.
type liveResults struct {
	Command    string             `json:"command"`
	Started    string             `json:"started"`
	Finished   string             `json:"finished"`
	Machine    oldkit.MachineInfo `json:"machine"`
	Onair      oldkit.BinaryInfo  `json:"onair"`
	Input      oldkit.InputInfo   `json:"input"`
	Latency    []latencyResult    `json:"latency"`
	FirstFrame []firstFrameResult `json:"first_frame"`
	Load       []loadResult       `json:"load"`
	Viewers    []viewerResult     `json:"viewers"`
	Errors     []string           `json:"errors,omitempty"`
}

// latencyResult is the ingest-to-player latency of one server: for each stamped frame
// sent inside the window, the time until a part or segment holding it had arrived.
type latencyResult struct {
	Server      string  `json:"server"`
	Player      string  `json:"player"`
	WarmupS     float64 `json:"warmup_s"`
	WindowS     float64 `json:"window_s"`
	FramesSent  int     `json:"frames_sent"`
	Frames      int     `json:"frames_received"`
	MedianMS    float64 `json:"median_ms"`
	P95MS       float64 `json:"p95_ms"`
	MinMS       float64 `json:"min_ms"`
	MaxMS       float64 `json:"max_ms"`
	Fetches     int     `json:"fetches"`
	FetchErrors int     `json:"fetch_errors"`
	FirstError  string  `json:"first_error,omitempty"`
	// MachineBusy is how busy the whole machine was during the run, in % of all cores.
	MachineBusy float64 `json:"machine_busy_pct"`
	// LatenciesMS are the window's frames' latencies, in send order.
	LatenciesMS []float64 `json:"frame_latencies_ms"`
}

// firstFrameResult is the time from the publisher's first byte to the arrival of the
// first part or segment holding an IDR picture, over several runs.
type firstFrameResult struct {
	Server   string    `json:"server"`
	RunsMS   []float64 `json:"runs_ms"`
	MedianMS float64   `json:"median_ms"`
}

// loadResult is the server's CPU and memory with N looping `ffmpeg -re -c copy`
// publishers.
type loadResult struct {
	Server     string `json:"server"`
	Publishers int    `json:"publishers"`
	// Live is how many of the streams were served over HLS at the end of the window.
	Live                int     `json:"live"`
	WarmupS             float64 `json:"warmup_s"`
	WindowS             float64 `json:"window_s"`
	CPUPercent          float64 `json:"cpu_pct_of_core"`
	CPUPercentPerStream float64 `json:"cpu_pct_per_stream"`
	RSSIdleMB           float64 `json:"rss_idle_mb"`
	RSSMeanMB           float64 `json:"rss_mean_mb"`
	RSSMaxMB            float64 `json:"rss_max_mb"`
	RSSPerStreamMB      float64 `json:"rss_per_stream_mb"`
	// RSSGrowthMBPerMin is how fast RSS rose during the window (last - first sample).
	RSSGrowthMBPerMin float64 `json:"rss_growth_mb_per_min"`
	// DiskMB is what the server kept on disk (HLS segments) at the end of the window.
	DiskMB           float64 `json:"disk_mb"`
	FFmpegCPUPercent float64 `json:"ffmpeg_cpu_pct_of_core"`
	MachineBusy      float64 `json:"machine_busy_pct"`
	// Dropped publishers exited during the measurement (the server closed their
	// connection); DropDetail tells how the first one ended.
	Dropped    int    `json:"publishers_dropped"`
	DropDetail string `json:"drop_detail,omitempty"`
	// FullDVR is measured at the largest publisher count only.
	FullDVR *fullDVRResult `json:"full_dvr,omitempty"`
}

// fullDVRResult is the memory once the DVR window (or playlist) has filled up.
type fullDVRResult struct {
	AfterS         float64 `json:"after_s"` // since the last publisher started
	RSSMB          float64 `json:"rss_mb"`
	RSSMaxMB       float64 `json:"rss_max_mb"`
	RSSPerStreamMB float64 `json:"rss_per_stream_mb"` // (RSS - idle RSS) / N
	// RSSMaxPerStreamMB is (highest RSS since the window - idle RSS) / N: what to provision.
	RSSMaxPerStreamMB float64 `json:"rss_max_per_stream_mb"`
	DiskMB            float64 `json:"disk_mb"`
	// CPUPercent is over the time from the end of the window to this measurement.
	CPUPercent float64 `json:"cpu_pct_of_core"`
}

// viewerResult is an HTTP load of many viewers of one live stream.
type viewerResult struct {
	Server          string   `json:"server"`
	Paths           []string `json:"paths"`
	Command         string   `json:"command"`
	Requests        int64    `json:"requests"`
	Seconds         float64  `json:"seconds"`
	RPS             float64  `json:"requests_per_s"`
	CPUSeconds      float64  `json:"server_cpu_s"`
	CPUPercent      float64  `json:"server_cpu_pct_of_core"`
	BaselineCPU     float64  `json:"baseline_cpu_pct_of_core"`
	RequestsPerCPUS float64  `json:"requests_per_cpu_s"`
	Non2xx          int64    `json:"non_2xx"`
	SocketErrors    string   `json:"socket_errors,omitempty"`
	LatencyP50      string   `json:"latency_p50"`
	LatencyP99      string   `json:"latency_p99"`
	TransferPerSec  string   `json:"transfer_per_s"`
	SegmentBytes    int      `json:"segment_bytes"`
	MachineBusy     float64  `json:"machine_busy_pct"`
}
