package web

import (
	"fmt"
	"onair/scripts/bench/oldkit"
	"strings"
)

// targetWebFirstFrameMS is issue 5's target: room page opened to first video frame.
const targetWebFirstFrameMS = 1500

// webSection renders the BENCHMARKS.md section of a web run (without its markers).
func webSection(r *webResults) string {
	var b strings.Builder
	oldkit.RigSectionHead(&b, "Web: room page weight and time to the first frame", r.Command, r.Started, r.Finished, r.Machine, r.Onair)
	fmt.Fprintf(&b, "Browser: %s, headless, driven by playwright-core (`web/ui/e2e/browser.mjs`'s flags).\n\n", r.Chromium)
	fmt.Fprintf(&b, "onair runs with FerretDB on the same machine; one room is created through the API and published by a looping "+
		"`ffmpeg -re -stream_loop -1 -i input.flv -c copy` with the live benchmark's `%s` (%.0f kbit/s). Once the room "+
		"is live, `%s` loads the room page, each run in a fresh browser context with the cache disabled: *page weight* is the bytes "+
		"on the wire (compressed, headers included) of the document, scripts, styles, fonts and images of the first load; "+
		"*first frame* is from the start of navigation to the first video frame presented (requestVideoFrameCallback, noted "+
		"by the player).\n\n", r.Input.File, r.Input.BitrateKbps, r.PageCommand)
	oldkit.RunErrors(&b, r.Errors)
	p := r.Page
	if p == nil {
		return b.String()
	}
	b.WriteString("### Targets\n\n")
	ff := p.FirstFrameMS
	b.WriteString(oldkit.Table([]string{"measure", "figure", "target", "verdict"}, [][]string{
		{fmt.Sprintf("room page opened → first video frame (median of %d)", len(ff.All)),
			fmt.Sprintf("%s ms (min %s, max %s)", oldkit.Fnum(ff.Median, 0), oldkit.Fnum(ff.Min, 0), oldkit.Fnum(ff.Max, 0)),
			fmt.Sprintf("under %d ms on loopback", targetWebFirstFrameMS),
			oldkit.Verdict(ff.Median < targetWebFirstFrameMS, len(ff.All) > 0)},
		{"page weight, first load (compressed)", fmt.Sprintf("%d bytes (%.1f KiB)", p.PageBytes, float64(p.PageBytes)/1024), "reported", "—"},
	}))
	fmt.Fprintf(&b, "\nRuns (ms): %s. Media fetched until the first frame (playlists, init, parts): %d bytes.\n\n",
		oldkit.RigJoin(ff.All, 0), p.MediaBytesToFirstFrame)
	b.WriteString("### Files of the first load\n\n")
	var rows [][]string
	for _, f := range p.Files {
		enc := f.Encoding
		if enc == "" {
			enc = "none"
		}
		rows = append(rows, []string{"`" + f.URL + "`", fmt.Sprint(f.Bytes), enc})
	}
	rows = append(rows, []string{"**total**", fmt.Sprint(p.PageBytes), ""})
	b.WriteString(oldkit.Table([]string{"file", "bytes on the wire", "content encoding"}, rows))
	return b.String()
}
