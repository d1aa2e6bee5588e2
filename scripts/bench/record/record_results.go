package record

import (
	"onair/scripts/bench/oldkit"
)

// recordResults is everything `bench record` measured; it is written as JSON to
// .artifacts/bench/record.json and summarised in BENCHMARKS.md.
type recordResults struct {
	Command  string             `json:"command"`
	Started  string             `json:"started"`
	Finished string             `json:"finished"`
	Machine  oldkit.MachineInfo `json:"machine"`
	Onair    oldkit.BinaryInfo  `json:"onair"`
	Input    oldkit.InputInfo   `json:"input"`
	Streams  int                `json:"streams"`
	// Load is the CPU and memory with recording off, then on (each on a fresh onair).
	Load       []recordLoad      `json:"load"`
	Outage     *outageResult     `json:"s3_outage,omitempty"`
	Completion *completionResult `json:"completion,omitempty"`
	Replay     *replayResult     `json:"replay,omitempty"`
	Errors     []string          `json:"errors,omitempty"`
}

// recordLoad is onair's CPU and memory with N looping `ffmpeg -re -c copy` publishers.
type recordLoad struct {
	Recording  bool    `json:"recording"`
	Streams    int     `json:"streams"`
	Live       int     `json:"live"`
	WarmupS    float64 `json:"warmup_s"`
	WindowS    float64 `json:"window_s"`
	CPUPercent float64 `json:"cpu_pct_of_core"`
	RSSIdleMB  float64 `json:"rss_idle_mb"`
	RSSMeanMB  float64 `json:"rss_mean_mb"`
	RSSMaxMB   float64 `json:"rss_max_mb"`
	// RSSGrowthMBPerMin is how fast RSS rose over the window (last - first sample).
	RSSGrowthMBPerMin float64 `json:"rss_growth_mb_per_min"`
	// SpoolMB and SpoolParts are the recording backlog at the end of the window.
	SpoolMB     float64 `json:"spool_mb"`
	SpoolParts  float64 `json:"spool_parts"`
	MachineBusy float64 `json:"machine_busy_pct"`
}

// outageSample is one second of the outage phase.
type outageSample struct {
	AtS        float64 `json:"t_s"` // since MinIO was killed
	Phase      string  `json:"phase"`
	RSSMB      float64 `json:"rss_mb"`
	SpoolMB    float64 `json:"spool_mb"`
	SpoolParts float64 `json:"spool_parts"`
}

// outageResult is onair's memory and recording backlog while MinIO is down, and how long
// the backlog takes to go up once it is back.
type outageResult struct {
	DownS float64 `json:"down_s"` // MinIO killed until it answered ready again
	// RSS over the samples from the kill to the restart.
	RSSStartMB float64 `json:"rss_start_mb"`
	RSSEndMB   float64 `json:"rss_end_mb"`
	RSSMinMB   float64 `json:"rss_min_mb"`
	RSSMaxMB   float64 `json:"rss_max_mb"`
	// RSSEarlyMB and RSSLateMB are the medians of the first and the last 10 s of the
	// outage's samples: the trend, without GC's swings.
	RSSEarlyMB float64 `json:"rss_early_median_mb"`
	RSSLateMB  float64 `json:"rss_late_median_mb"`
	// RSSDrainMaxMB is the highest RSS while the backlog was being uploaded.
	RSSDrainMaxMB float64 `json:"rss_drain_max_mb"`
	SpoolStartMB  float64 `json:"spool_start_mb"`
	SpoolEndMB    float64 `json:"spool_end_mb"`
	PartsStart    float64 `json:"parts_start"`
	PartsEnd      float64 `json:"parts_end"`
	// DiskStartMB and DiskEndMB are the size of onair's recordings directory (the spools).
	DiskStartMB float64 `json:"disk_start_mb"`
	DiskEndMB   float64 `json:"disk_end_mb"`
	// DrainS is from MinIO answering ready again until no full chunk waited for upload
	// (parts pending no more than the recordings in progress).
	DrainS      float64        `json:"drain_s"`
	MachineBusy float64        `json:"machine_busy_pct"`
	Samples     []outageSample `json:"samples"`
}

// completionResult checks the recordings that went through the outage once their
// publishers have left.
type completionResult struct {
	Rooms    int `json:"rooms"`
	Complete int `json:"complete"` // with a replay playlist answering 200
	// WaitS is from the publishers leaving until the last replay playlist answered 200.
	WaitS float64 `json:"wait_s"`
	// PublishedS and RecordedS are, per room, how long the publisher sent and how long
	// the recording lasts.
	PublishedS []float64 `json:"published_s"`
	RecordedS  []float64 `json:"recorded_s"`
}

// replayResult is the time from a publisher leaving to its replay playlist answering 200.
type replayResult struct {
	PublishS float64 `json:"publish_s"`
	// RunsMS: until the replay playlist answered 200; URLMS: until the broadcast listed
	// a replay_url.
	RunsMS   []float64 `json:"runs_ms"`
	URLMS    []float64 `json:"replay_url_ms"`
	MedianMS float64   `json:"median_ms"`
	MaxMS    float64   `json:"max_ms"`
}
