package chat

import (
	"math"
	"slices"
)

// chatLatency summarises delivery latencies (send to receipt), in milliseconds.
type chatLatency struct {
	Samples int     `json:"samples"`
	MinMS   float64 `json:"min_ms"`
	P50MS   float64 `json:"p50_ms"`
	P90MS   float64 `json:"p90_ms"`
	P99MS   float64 `json:"p99_ms"`
	P999MS  float64 `json:"p99_9_ms"`
	MaxMS   float64 `json:"max_ms"`
	MeanMS  float64 `json:"mean_ms"`
}

// summarizeLatency summarises latencies given in microseconds; it sorts us in place.
// Percentiles are by the nearest-rank method (as percentile in stats.go). With no
// samples every figure is 0 (JSON has no NaN): look at Samples.
func summarizeLatency(us []int32) chatLatency {
	if len(us) == 0 {
		return chatLatency{}
	}
	slices.Sort(us)
	rank := func(p float64) float64 {
		// The epsilon keeps 99.9 % of 1000 at rank 999 despite 99.9's binary rounding.
		r := int(math.Ceil(p/100*float64(len(us)) - 1e-9))
		return float64(us[min(max(r, 1), len(us))-1]) / 1000
	}
	var sum int64
	for _, v := range us {
		sum += int64(v)
	}
	return chatLatency{
		Samples: len(us),
		MinMS:   float64(us[0]) / 1000,
		P50MS:   rank(50),
		P90MS:   rank(90),
		P99MS:   rank(99),
		P999MS:  rank(99.9),
		MaxMS:   float64(us[len(us)-1]) / 1000,
		MeanMS:  float64(sum) / float64(len(us)) / 1000,
	}
}

// latencyMicros converts a latency in nanoseconds to microseconds for summarizeLatency,
// clamped to int32 (negative values, from a clock step, become 0).
func latencyMicros(ns int64) int32 {
	us := ns / 1000
	switch {
	case us < 0:
		return 0
	case us > math.MaxInt32:
		return math.MaxInt32
	}
	return int32(us)
}
