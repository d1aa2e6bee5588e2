package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"onair/scripts/bench/oldkit"
)

// webResults is what `bench web` measured; it is written as JSON to
// .artifacts/bench/web.json and summarised in BENCHMARKS.md.
type webResults struct {
	Command  string             `json:"command"`
	Started  string             `json:"started"`
	Finished string             `json:"finished"`
	Machine  oldkit.MachineInfo `json:"machine"`
	Chromium string             `json:"chromium"`
	Onair    oldkit.BinaryInfo  `json:"onair"`
	Input    oldkit.InputInfo   `json:"input"`
	// PageCommand is how bench.mjs was run.
	PageCommand string   `json:"page_command"`
	Page        *webPage `json:"page,omitempty"`
	Errors      []string `json:"errors,omitempty"`
}

// webPage is what web/ui/e2e/bench.mjs prints.
type webPage struct {
	URL          string `json:"url"`
	Runs         int    `json:"runs"`
	FirstFrameMS struct {
		Median float64   `json:"median"`
		Min    float64   `json:"min"`
		Max    float64   `json:"max"`
		All    []float64 `json:"all"`
	} `json:"first_frame_ms"`
	PageBytes              int64     `json:"page_bytes"`
	MediaBytesToFirstFrame int64     `json:"media_bytes_to_first_frame"`
	Files                  []webFile `json:"files"`
	TargetFirstFrameMS     float64   `json:"target_first_frame_ms"`
}

// webFile is one file of the page's first load.
type webFile struct {
	URL      string `json:"url"`
	Bytes    int64  `json:"bytes"`
	Encoding string `json:"encoding"`
}

// parseWebPage reads bench.mjs's output and checks that it measured every run.
func parseWebPage(out []byte, runs int) (*webPage, error) {
	var p webPage
	if err := json.Unmarshal(out, &p); err != nil {
		return nil, fmt.Errorf("bench.mjs output: %w", err)
	}
	switch {
	case len(p.FirstFrameMS.All) != runs:
		return nil, fmt.Errorf("bench.mjs output: %d first-frame times for %d runs", len(p.FirstFrameMS.All), runs)
	case p.PageBytes <= 0 || len(p.Files) == 0:
		return nil, errors.New("bench.mjs output: no page bytes")
	}
	return &p, nil
}
