package hls

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ReplaySegment is a byte range of a recording and how long it plays.
type ReplaySegment struct {
	Offset, Size int64
	Duration     time.Duration
	Key          bool // it starts with a key frame
}

// programDateTime is EXT-X-PROGRAM-DATE-TIME's form (ISO 8601 with milliseconds).
const programDateTime = "2006-01-02T15:04:05.000Z07:00"

// ReplayPlaylist writes the VOD playlist of a recording, one fMP4 object at url whose
// first initSize bytes are the init segment: the init and every segment are byte ranges
// of it, so players seek without downloading the object. It lives beside the live
// playlists so that one package decides what onair's playlists say. EXT-X-VERSION is 6,
// the lowest that EXT-X-MAP (and EXT-X-BYTERANGE, 4) needs; TARGETDURATION is rounded up
// from the longest segment. A non-zero start dates the first segment
// (EXT-X-PROGRAM-DATE-TIME), which players carry on by the durations: the wall-clock time
// of any moment of the replay, as the live playlist gave it.
func ReplayPlaylist(url string, initSize int64, segs []ReplaySegment, start time.Time) string {
	target := 1.0
	independent := true
	for _, s := range segs {
		target = max(target, math.Ceil(s.Duration.Seconds()))
		independent = independent && s.Key
	}
	var sb strings.Builder
	sb.WriteString("#EXTM3U\n#EXT-X-VERSION:6\n")
	fmt.Fprintf(&sb, "#EXT-X-TARGETDURATION:%d\n", int(target))
	sb.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n")
	if independent {
		sb.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	}
	fmt.Fprintf(&sb, "#EXT-X-MAP:URI=%q,BYTERANGE=\"%d@0\"\n", url, initSize)
	if !start.IsZero() && len(segs) > 0 {
		sb.WriteString("#EXT-X-PROGRAM-DATE-TIME:" + start.UTC().Format(programDateTime) + "\n")
	}
	for _, s := range segs {
		sb.WriteString("#EXTINF:" + strconv.FormatFloat(s.Duration.Seconds(), 'f', 5, 64) + ",\n")
		fmt.Fprintf(&sb, "#EXT-X-BYTERANGE:%d@%d\n%s\n", s.Size, s.Offset, url)
	}
	sb.WriteString("#EXT-X-ENDLIST\n")
	return sb.String()
}
