package media

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Stream is one run of a stream, from its first access unit to its end. A run usually
// has one publisher; one that reconnects within the takeover window continues it (see
// Hub), with timestamps that go on from where the run was.
type Stream struct {
	id        string
	route     Route
	tracks    Tracks
	startedAt time.Time
	log       *slog.Logger
	hub       *Hub
	pub       atomic.Pointer[Publisher] // the publisher writing to the run

	mu    sync.Mutex // guards what follows, and sinks against write racing end
	sinks []*sinkQueue
	ended bool
	// offset is added to the current publisher's timestamps so that they continue the
	// run's; resumed marks the next access unit as the first after a reconnect.
	offset  time.Duration
	resumed bool
	last    [2]trackEnd // video, audio
	rate    rateWindow
	keys    keyRing   // a main run's latest key frames, for its renditions' check
	align   alignment // a rendition's check of its key frames against its main's

	main    *Stream // the main rendition's run, for a rendition's run
	aligned atomic.Bool

	done   chan struct{}
	endErr error

	bytes      atomic.Int64
	videoUnits atomic.Int64
	audioUnits atomic.Int64
	lastDTS    atomic.Int64
	lastData   atomic.Int64 // unix nanoseconds of the latest access unit's arrival
	warnings   sync.Map     // code → text
}

// trackEnd is where a track of the run ends so far: its latest decode time and the
// interval before it, which the latest sample is assumed to last.
type trackEnd struct {
	dts, delta time.Duration
	seen       bool
}

func newStream(p *Publisher, tracks Tracks) *Stream {
	s := &Stream{
		id:        newID(),
		route:     p.route,
		tracks:    tracks,
		startedAt: time.Now(),
		log:       p.hub.log,
		hub:       p.hub,
		done:      make(chan struct{}),
	}
	s.pub.Store(p)
	s.lastData.Store(s.startedAt.UnixNano())
	return s
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ID is unique to this run of the stream.
func (s *Stream) ID() string { return s.id }

// Name is the public stream name.
func (s *Stream) Name() string { return s.route.Name }

// Route is what the publisher's key resolved to.
func (s *Stream) Route() Route { return s.route }

// Tracks are the stream's tracks, fixed at start.
func (s *Stream) Tracks() Tracks { return s.tracks }

// StartedAt is when the stream started.
func (s *Stream) StartedAt() time.Time { return s.startedAt }

// LastData is when the latest access unit arrived (the start, before the first).
func (s *Stream) LastData() time.Time { return time.Unix(0, s.lastData.Load()) }

// Done is closed when the stream has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err says why the stream ended (nil for a normal end), once Done is closed.
func (s *Stream) Err() error {
	<-s.done
	return s.endErr
}

func (s *Stream) isEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// VideoCodec is the video codec, or "" for none.
func (s *Stream) VideoCodec() Codec {
	if s.tracks.Video == nil {
		return ""
	}
	return s.tracks.Video.Codec
}

// AudioCodec is the audio codec, or "" for none.
func (s *Stream) AudioCodec() Codec {
	if s.tracks.Audio == nil {
		return ""
	}
	return s.tracks.Audio.Codec
}

// Warn sets a warning about the stream for its owner (code names it; an empty text
// clears it), e.g. from a sink that finds the encoder's settings wanting.
func (s *Stream) Warn(code, text string) {
	if text == "" {
		s.warnings.Delete(code)
		return
	}
	s.warnings.Store(code, text)
}

// Warnings lists the stream's current warnings.
func (s *Stream) Warnings() []string {
	var out []string
	s.warnings.Range(func(_, v any) bool {
		out = append(out, v.(string))
		return true
	})
	return out
}

// StreamStats are running totals of a stream, and its recent rates.
type StreamStats struct {
	Bytes      int64
	VideoUnits int64
	AudioUnits int64
	// Duration is the DTS of the latest access unit.
	Duration time.Duration
	// Bitrate (bits per second) and FPS over the last few seconds.
	Bitrate int64
	FPS     float64
}

// Stats returns the stream's running totals and recent rates.
func (s *Stream) Stats() StreamStats {
	s.mu.Lock()
	bitrate, fps := s.rate.rates(time.Now())
	s.mu.Unlock()
	return StreamStats{
		Bytes:      s.bytes.Load(),
		VideoUnits: s.videoUnits.Load(),
		AudioUnits: s.audioUnits.Load(),
		Duration:   time.Duration(s.lastDTS.Load()),
		Bitrate:    bitrate,
		FPS:        fps,
	}
}

// rateWindow keeps per-second byte and video frame counts of the last rateSeconds.
type rateWindow struct {
	sec    [rateSeconds]int64
	bytes  [rateSeconds]int64
	frames [rateSeconds]int64
}

const rateSeconds = 5

func (w *rateWindow) add(now time.Time, bytes int, video bool) {
	sec := now.Unix()
	i := sec % rateSeconds
	if w.sec[i] != sec {
		w.sec[i], w.bytes[i], w.frames[i] = sec, 0, 0
	}
	w.bytes[i] += int64(bytes)
	if video {
		w.frames[i]++
	}
}

// rates averages the complete seconds of the window, leaving out the current one.
func (w *rateWindow) rates(now time.Time) (bitrate int64, fps float64) {
	cur := now.Unix()
	var bytes, frames, secs int64
	for i := range rateSeconds {
		if s := w.sec[i]; s < cur && s >= cur-rateSeconds {
			bytes += w.bytes[i]
			frames += w.frames[i]
			secs++
		}
	}
	if secs == 0 {
		return 0, 0
	}
	return bytes * 8 / secs, float64(frames) / float64(secs)
}

func (s *Stream) addSink(sink Sink, size int) {
	q := &sinkQueue{sink: sink, ch: make(chan *AccessUnit, size), pause: &AccessUnit{}}
	s.sinks = append(s.sinks, q)
	go q.run()
}

// resume makes p the run's publisher if it sends the same tracks under the same route:
// its timestamps then continue from the end of the run so far. Called with hub.mu held.
func (s *Stream) resume(p *Publisher, tracks Tracks) bool {
	if p.route != s.route || !tracks.Equal(s.tracks) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	var end time.Duration
	for _, t := range s.last {
		if t.seen {
			end = max(end, t.dts+t.delta)
		}
	}
	s.offset, s.resumed = end, true
	s.pub.Store(p)
	return true
}

func (s *Stream) write(p *Publisher, au *AccessUnit) {
	if s.pub.Load() != p {
		return // a publisher replaced by another
	}
	if err := s.writeLocked(au); err != nil {
		s.log.Warn("rendition refused", "stream", s.Name(), "rendition", s.Rendition(), "err", err)
		p.Refuse(fmt.Errorf("rendition %q refused: %w", s.Rendition(), err))
	}
}

// writeLocked takes the stream's lock to write au; a rendition's error refuses it.
func (s *Stream) writeLocked(au *AccessUnit) error {
	size := au.Size()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil
	}
	au.DTS += s.offset
	au.PTS += s.offset
	if s.main != nil {
		if err := s.checkAlign(au); err != nil {
			return err
		}
	} else if au.Video && au.Key {
		s.keys.add(au.DTS)
	}
	if s.resumed {
		au.Discontinuity, s.resumed = true, false
	}
	t := &s.last[1]
	if au.Video {
		t = &s.last[0]
		s.videoUnits.Add(1)
	} else {
		s.audioUnits.Add(1)
	}
	if t.seen && au.DTS > t.dts && !au.Discontinuity {
		t.delta = au.DTS - t.dts
	}
	t.dts, t.seen = au.DTS, true
	s.bytes.Add(int64(size))
	s.lastDTS.Store(int64(au.DTS))
	s.lastData.Store(time.Now().UnixNano())
	s.rate.add(au.Received, size, au.Video)

	kept := s.sinks[:0]
	for _, q := range s.sinks {
		select {
		case q.ch <- au:
			kept = append(kept, q)
		default:
			s.hub.sinksDropped.Add(1)
			s.log.Warn("sink dropped: too slow", "stream", s.Name(), "sink", fmt.Sprintf("%T", q.sink), "queue", cap(q.ch))
			q.stop(ErrSinkTooSlow)
		}
	}
	clear(s.sinks[len(kept):])
	s.sinks = kept
	return nil
}

// pause tells the sinks that can use it (Pauser) that the publisher dropped and the run
// waits for another. A sink whose queue is full is not told: it has access units to
// work on, and the run goes on with the next publisher's anyway.
func (s *Stream) pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	for _, q := range s.sinks {
		if _, ok := q.sink.(Pauser); !ok {
			continue
		}
		select {
		case q.ch <- q.pause:
		default:
		}
	}
}

func (s *Stream) end(reason error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	sinks := s.sinks
	s.sinks = nil
	s.endErr = reason
	s.mu.Unlock()

	for _, q := range sinks {
		q.stop(nil)
	}
	close(s.done)
	s.log.Info("stream ended", "stream", s.Name(), "id", s.ID(), "reason", errString(reason),
		"duration", time.Since(s.startedAt).Round(time.Millisecond))
}

func errString(err error) string {
	if err == nil {
		return "publisher left"
	}
	return err.Error()
}

// sinkQueue feeds one sink from its own goroutine so that it never holds up the publisher.
type sinkQueue struct {
	sink   Sink
	ch     chan *AccessUnit
	reason error
	// pause, sent in the queue, marks where the publisher dropped (Stream.pause).
	pause *AccessUnit
}

func (q *sinkQueue) run() {
	var err error
	for au := range q.ch {
		switch {
		case err != nil:
			// drain so that the publisher never blocks
		case au == q.pause:
			q.sink.(Pauser).Paused()
		default:
			err = q.sink.WriteAccessUnit(au)
		}
	}
	if err == nil {
		err = q.reason
	}
	q.sink.Close(err)
}

// stop is called with the stream's lock held, so at most once and never concurrently with a send.
func (q *sinkQueue) stop(reason error) {
	q.reason = reason
	close(q.ch)
}

// Equal reports whether t and u describe the same tracks: a decoder set up for one
// decodes the other.
func (t Tracks) Equal(u Tracks) bool {
	if (t.Video == nil) != (u.Video == nil) || (t.Audio == nil) != (u.Audio == nil) {
		return false
	}
	if v, w := t.Video, u.Video; v != nil {
		if v.Codec != w.Codec || v.Width != w.Width || v.Height != w.Height || !bytes.Equal(v.VPS, w.VPS) ||
			!bytes.Equal(v.SPS, w.SPS) || !bytes.Equal(v.PPS, w.PPS) || !bytes.Equal(v.SequenceHeader, w.SequenceHeader) {
			return false
		}
	}
	if a, b := t.Audio, u.Audio; a != nil {
		if a.Codec != b.Codec || a.SampleRate != b.SampleRate || a.Channels != b.Channels || (a.AAC == nil) != (b.AAC == nil) {
			return false
		}
		if a.AAC != nil && *a.AAC != *b.AAC {
			return false
		}
	}
	return true
}
