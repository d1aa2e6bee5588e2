package media

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// A stream's further renditions (a quality ladder from the streamer's own encoder: a
// simulcast output published with ?rendition=<name>, or a video track of an Enhanced RTMP
// multitrack publish) are publishers and runs of their own, keyed by the stream's name and
// the rendition's, beside the main rendition's. They live on the node that holds the main
// rendition, end when its publisher ends, and never wait for a publisher to come back:
// the encoder that feeds them restarts them with the main.

// Errors of a rendition's publisher.
var (
	// ErrNoMain: a rendition was published while its stream's main rendition is not live
	// on this node.
	ErrNoMain = errors.New("the stream's main rendition is not being published to this node")
	// ErrMainEnded ends the renditions of a stream whose main publisher ended.
	ErrMainEnded = errors.New("the stream's main rendition ended")
	// ErrNotAligned refuses a rendition whose key frames are not where the main's are:
	// players could not switch between them at segment boundaries.
	ErrNotAligned = errors.New("key frames not aligned with the main rendition")
)

// maxRenditionName bounds a rendition's name, which appears in URLs and the dashboard.
const maxRenditionName = 16

// MaxRenditions bounds a stream's further renditions: each is a run with its own log and
// segmenter, and a ladder needs a few.
const MaxRenditions = 8

// ValidRendition checks a rendition name: 1 to 16 of a-z, 0-9, '_' and '-'.
func ValidRendition(name string) error {
	if name == "" || len(name) > maxRenditionName {
		return fmt.Errorf("rendition name %q must be 1 to %d characters", name, maxRenditionName)
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return fmt.Errorf("rendition name %q may hold only a-z, 0-9, '_' and '-'", name)
		}
	}
	return nil
}

// renditionWait is how long a rendition's publish waits for its main rendition's: an
// encoder with several outputs connects them at about the same time, in any order.
const renditionWait = 3 * time.Second

// publishRendition makes p, whose route names a rendition, a publisher beside the main
// rendition's publisher on this node. The main holds the stream's claim for the cluster:
// a rendition on a node without the main is refused, for its segments must be cut beside
// the main's.
func (h *Hub) publishRendition(ctx context.Context, p *Publisher) (*Publisher, error) {
	route := p.route
	if err := ValidRendition(route.Rendition); err != nil {
		return nil, fmt.Errorf("publish %q: %w", route.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, renditionWait)
	defer cancel()
	for {
		h.mu.Lock()
		main := h.publishers[route.Name]
		if main != nil && main.Err() == nil {
			old := h.publishers[route.key()]
			if err := h.busy(old); err != nil {
				h.mu.Unlock()
				return nil, fmt.Errorf("publish %q rendition %q: %w", route.Name, route.Rendition, err)
			}
			if old == nil && h.renditionsLocked(route.Name) >= MaxRenditions {
				h.mu.Unlock()
				err := fmt.Errorf("publish %q rendition %q: the stream has %d renditions besides the main, the most it may have",
					route.Name, route.Rendition, MaxRenditions)
				h.noteRefusal(route.Name, err)
				return nil, err
			}
			p.main = main
			h.publishers[route.key()] = p
			h.mu.Unlock()
			if old != nil {
				old.end(ErrTakenOver) // a rendition's run never outlives its publisher
			}
			h.log.Info("rendition publisher accepted", "stream", route.Name, "rendition", route.Rendition, "remote", p.remote)
			return p, nil
		}
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			err := fmt.Errorf("publish %q rendition %q: %w: publish the main rendition (the stream key without ?rendition=) first, "+
				"and on a cluster send every output of the key to the node that takes the main", route.Name, route.Rendition, ErrNoMain)
			h.noteRefusal(route.Name, err)
			return nil, err
		}
	}
}

// renditionsLocked counts the further renditions of the stream called name. Called with
// h.mu held.
func (h *Hub) renditionsLocked(name string) int {
	n := 0
	for _, p := range h.publishers {
		if p.main != nil && p.route.Name == name {
			n++
		}
	}
	return n
}

// notifyLocked wakes renditions waiting for their main. Called with h.mu held.
func (h *Hub) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// endRenditions ends the renditions of the stream called name, whose main publisher main
// ended.
func (h *Hub) endRenditions(name string, main *Publisher) {
	var ended []*Publisher
	h.mu.Lock()
	for _, p := range h.publishers {
		if p.main == main && p.route.Name == name {
			ended = append(ended, p)
		}
	}
	h.mu.Unlock()
	for _, p := range ended {
		p.end(ErrMainEnded)
	}
}

// Renditions lists the started runs of the further renditions of the stream called name,
// by rendition name.
func (h *Hub) Renditions(name string) []*Stream {
	var out []*Stream
	for _, p := range h.snapshot() {
		if p.route.Name == name && p.main != nil {
			if s := p.Stream(); s != nil {
				out = append(out, s)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].route.Rendition < out[j].route.Rendition })
	return out
}

// SetClockBase tells the publisher its first access unit's RTMP timestamp, which the DTS
// of its access units count from: a rendition's timestamps are put on its main
// rendition's run by the two publishers' bases (an encoder's outputs share one clock).
func (p *Publisher) SetClockBase(d time.Duration) { p.clockBase.Store(int64(d)) }

// startRendition starts a rendition's run on its main's timeline.
func (p *Publisher) startRendition(tracks Tracks) (*Stream, error) {
	main := p.main.Stream()
	switch {
	case main == nil:
		return nil, fmt.Errorf("start rendition %q of %q: the main rendition has not started yet", p.route.Rendition, p.route.Name)
	case tracks.Video == nil || main.tracks.Video == nil:
		return nil, fmt.Errorf("start rendition %q of %q: renditions are video: both it and the main rendition need a video track",
			p.route.Rendition, p.route.Name)
	}
	main.mu.Lock()
	mainOffset := main.offset
	main.mu.Unlock()
	s := newStream(p, tracks)
	s.main = main
	s.offset = time.Duration(p.clockBase.Load()-p.main.clockBase.Load()) + mainOffset
	return p.open(s)
}

// Rendition names the run's rendition; "" for the main one.
func (s *Stream) Rendition() string { return s.route.Rendition }

// Main is the main rendition's run of a rendition's run; nil for a main run.
func (s *Stream) Main() *Stream { return s.main }

// Aligned reports whether a rendition's key frames have been found where its main's are,
// over the first alignKeys of them: until then players are not offered it.
func (s *Stream) Aligned() bool { return s.main == nil || s.aligned.Load() }

// Alignment of a rendition's key frames with its main's.
const (
	// alignKeys is how many of a rendition's first key frames are checked.
	alignKeys = 5
	// alignTolerance is how far a rendition's key frame may be from the main's: RTMP's
	// millisecond timestamps, and half a frame at 25 fps and more.
	alignTolerance = 20 * time.Millisecond
	// keyRingSize is how many of the main's latest key frames are kept to check against.
	keyRingSize = 64
	// maxPendingKeys bounds the rendition key frames waiting for the main to get there.
	maxPendingKeys = 16
	// maxClockSkew is how far a rendition's first access unit may be, on the main's
	// timeline, from the main's latest frame: outputs of one encoder arrive together,
	// while another encoder's clock (a second ffmpeg, an output started later) is
	// anywhere, and its key frames would line up with the main's past.
	maxClockSkew = 3 * time.Second
)

// keyRing keeps a main run's latest key frame times.
type keyRing struct {
	at [keyRingSize]time.Duration
	n  int
}

func (k *keyRing) add(t time.Duration) {
	k.at[k.n%keyRingSize] = t
	k.n++
}

func (k *keyRing) list() []time.Duration {
	if k.n <= keyRingSize {
		return append([]time.Duration(nil), k.at[:k.n]...)
	}
	i := k.n % keyRingSize
	return append(append([]time.Duration(nil), k.at[i:]...), k.at[:i]...)
}

// alignment is a rendition's check of its first key frames against its main's.
type alignment struct {
	pending []time.Duration // key frames the main has not reached yet
	judged  int
	done    bool
	clocked bool // the rendition's clock was found to be the main's
}

// sameClock checks a rendition's first access unit at dts against the main's latest
// frame.
func sameClock(dts, mainEnd time.Duration) error {
	if d := dts - mainEnd; d > maxClockSkew || d < -maxClockSkew {
		return fmt.Errorf("%w: its timestamps are %s from the main's (at most %s): publish every rendition from the "+
			"encoder of the main, whose outputs share one clock and start together", ErrNotAligned, d.Round(time.Millisecond), maxClockSkew)
	}
	return nil
}

// judge checks the pending key frames that the main's video has reached (mainEnd, its
// latest frame) against its key frames; it fails at the first that is not within
// alignTolerance of one.
func (a *alignment) judge(mainKeys []time.Duration, mainEnd time.Duration) error {
	n := 0
	for _, k := range a.pending {
		if mainEnd < k+alignTolerance {
			break
		}
		n++
		if d := nearest(k, mainKeys); d > alignTolerance {
			return fmt.Errorf("%w: its key frame at %s is %s from the main's nearest (at most %s): encode every rendition "+
				"with the same keyframe interval (ffmpeg: the same -g and -keyint_min with -sc_threshold 0; OBS: the same "+
				"Keyframe Interval), from one encoder clock", ErrNotAligned, k.Round(time.Millisecond), d.Round(time.Millisecond), alignTolerance)
		}
		a.judged++
	}
	a.pending = append(a.pending[:0], a.pending[n:]...)
	a.done = a.judged >= alignKeys
	return nil
}

// nearest is the distance from t to the nearest of keys (an hour when there is none).
func nearest(t time.Duration, keys []time.Duration) time.Duration {
	best := time.Hour
	for _, k := range keys {
		d := t - k
		if d < 0 {
			d = -d
		}
		best = min(best, d)
	}
	return best
}

// checkAlign notes a rendition's access unit and judges what can be judged. Called with
// s.mu held (the main's is taken inside: a main never takes a rendition's lock).
func (s *Stream) checkAlign(au *AccessUnit) error {
	a := &s.align
	if a.done {
		return nil
	}
	if au.Video && au.Key && len(a.pending) < maxPendingKeys {
		a.pending = append(a.pending, au.DTS)
	}
	if len(a.pending) == 0 {
		return nil
	}
	m := s.main
	m.mu.Lock()
	keys, end, seen := m.keys.list(), m.last[0].dts, m.last[0].seen
	m.mu.Unlock()
	if !seen {
		return nil
	}
	if !a.clocked {
		if err := sameClock(au.DTS, end); err != nil {
			return err
		}
		a.clocked = true
	}
	if err := a.judge(keys, end); err != nil {
		return err
	}
	if a.done {
		s.aligned.Store(true)
		s.log.Info("rendition aligned with the main", "stream", s.Name(), "rendition", s.Rendition(), "key_frames", a.judged)
	}
	return nil
}
