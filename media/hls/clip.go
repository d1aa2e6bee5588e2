package hls

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// A clip is the last seconds of a run (or of a recording) as one fragmented MP4: the init
// segment followed by whole segments, cut where a segment starts with a key frame so
// that it plays from its first byte. Its layout is a recording's (init, then segments
// end to end), so that it is played with the same VOD playlist (ReplayPlaylist).

// Errors of CutLive.
var (
	// ErrNotLive: no run of that name is live on this node.
	ErrNotLive = errors.New("hls: stream not live on this node")
	// ErrTooShort: the run has no complete segment yet.
	ErrTooShort = errors.New("hls: nothing to clip yet")
)

// ClipSpan is the first of the segments segs[first:end] that a clip of want ending with
// segment end-1 takes: as few as cover want, moved back to a segment with a key frame.
// A clip longer than what there is takes everything from the first key frame (first is
// end when no segment before end has one).
func ClipSpan(segs []ReplaySegment, end int, want time.Duration) (first int) {
	end = min(max(end, 0), len(segs))
	first = end
	var got time.Duration
	for first > 0 && got < want {
		first--
		got += segs[first].Duration
	}
	for first > 0 && !segs[first].Key {
		first--
	}
	for first < end && !segs[first].Key { // the run's first segments had no key frame
		first++
	}
	return first
}

// Cut is a clip written by CutLive: where its bytes are in the object, and when it starts.
type Cut struct {
	InitSize int64
	// Segments locate its segments in the clip, Offset from the clip's first byte.
	Segments []ReplaySegment
	// Start is the clip's media time from the run's first key frame; Time its wall clock.
	Start    time.Duration
	Time     time.Time
	Duration time.Duration
	Size     int64
}

// CutLive writes to w a clip of about the last want of the stream name live on this
// node, from the complete segments of its DVR window (a segment behind the live edge at
// most): ErrNotLive when no such run is live here.
func (s *Server) CutLive(ctx context.Context, name string, want time.Duration, w io.Writer) (Cut, error) {
	r := s.lookup(name)
	if r == nil {
		return Cut{}, fmt.Errorf("clip of %q: %w", name, ErrNotLive)
	}
	r.mu.RLock()
	ended := r.ended
	segs := make([]ReplaySegment, len(r.segs))
	var starts []time.Duration
	var times []time.Time
	for i, sg := range r.segs {
		segs[i] = ReplaySegment{Offset: sg.Offset, Size: sg.Size(), Duration: sg.Duration, Key: sg.Independent}
		starts, times = append(starts, sg.Start), append(times, sg.Time)
	}
	r.mu.RUnlock()
	if ended {
		return Cut{}, fmt.Errorf("clip of %q: ended: %w", name, ErrNotLive)
	}
	first := ClipSpan(segs, len(segs), want)
	if first == len(segs) {
		return Cut{}, fmt.Errorf("clip of %q: %w", name, ErrTooShort)
	}
	c := Cut{InitSize: int64(len(r.avInit)), Start: starts[first], Time: times[first]}
	if _, err := w.Write(r.avInit); err != nil {
		return Cut{}, fmt.Errorf("clip of %q: write init: %w", name, err)
	}
	at := c.InitSize
	for _, sg := range segs[first:] {
		if err := r.copyLog(ctx, w, sg.Offset, sg.Size); err != nil {
			return Cut{}, fmt.Errorf("clip of %q: segment at %d: %w", name, sg.Offset, err)
		}
		c.Segments = append(c.Segments, ReplaySegment{Offset: at, Size: sg.Size, Duration: sg.Duration, Key: sg.Key})
		at += sg.Size
		c.Duration += sg.Duration
	}
	c.Size = at
	return c, nil
}

// copyLog copies size bytes of the run's log at off to w: from its chunk file, or from the
// archive once the chunk left the disk.
func (r *run) copyLog(ctx context.Context, w io.Writer, off, size int64) error {
	f, at, err := r.mediaLog.Open(off, size)
	if err == nil {
		defer f.Close()
		_, err = io.Copy(w, io.NewSectionReader(f, at, size))
		return err
	}
	if !errors.Is(err, os.ErrNotExist) || r.kept == nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rc, err := r.kept.Open(ctx, off, size)
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.Copy(w, rc)
	if err == nil && n != size {
		err = fmt.Errorf("archive gave %d bytes of %d", n, size)
	}
	return err
}
