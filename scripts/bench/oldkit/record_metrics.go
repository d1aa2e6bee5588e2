package oldkit

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// promValue returns the value of the unlabelled sample name in Prometheus' text format.
func PromValue(text, name string) (float64, bool) {
	for line := range strings.SplitSeq(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || !strings.HasPrefix(rest, " ") {
			continue // another metric, a longer name or a labelled sample
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		v, err := strconv.ParseFloat(f[0], 64)
		return v, err == nil
	}
	return 0, false
}

// promSum adds up every sample of name, labelled or not, in Prometheus' text format.
func PromSum(text, name string) float64 {
	var sum float64
	for _, v := range PromByLabel(text, name) {
		sum += v
	}
	return sum
}

// promByLabel sums the samples of name in Prometheus' text format by their labels, e.g.
// `kind="part"`; an unlabelled sample is under "".
func PromByLabel(text, name string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.SplitSeq(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		labels := ""
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			labels, rest = rest[1:end], rest[end+1:]
		}
		if f := strings.Fields(rest); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				out[labels] += v
			}
		}
	}
	return out
}

// spoolState is onair's recording backlog as /metrics tells it.
type spoolState struct {
	Recordings float64 // onair_recordings_in_progress
	Bytes      float64 // onair_recording_spool_bytes: waiting on local disk for object storage
	Parts      float64 // onair_recording_parts_pending: chunks of the runs' logs not stored yet
}

func parseSpool(text string) (spoolState, error) {
	r, ok0 := PromValue(text, "onair_recordings_in_progress")
	b, ok1 := PromValue(text, "onair_recording_spool_bytes")
	p, ok2 := PromValue(text, "onair_recording_parts_pending")
	if !ok0 || !ok1 || !ok2 {
		return spoolState{}, fmt.Errorf("metrics: no onair_recordings_in_progress, onair_recording_spool_bytes or onair_recording_parts_pending (is recording enabled?)")
	}
	return spoolState{Recordings: r, Bytes: b, Parts: p}, nil
}

// spool reads the node's recording backlog.
func (n *RigNode) Spool(ctx context.Context, client *http.Client) (spoolState, error) {
	text, err := n.Metrics(ctx, client)
	if err != nil {
		return spoolState{}, err
	}
	return parseSpool(text)
}
