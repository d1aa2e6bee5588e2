package media

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Publisher is one connection's claim on a stream. Its methods are called from the
// connection's goroutine; Done and End may be used from anywhere.
type Publisher struct {
	hub    *Hub
	route  Route
	remote string

	activity atomic.Int64 // unix nanoseconds of the last data received
	stream   atomic.Pointer[Stream]
	// clockBase is the publisher's first RTMP timestamp: access units' DTS count from it.
	// Renditions map their timestamps onto the main rendition's run by it.
	clockBase atomic.Int64
	// main is the main rendition's publisher, for a rendition's publisher.
	main *Publisher

	// Guarded by hub.mu:
	claim     Claim      // moves to the successor of a takeover on this node
	inherit   *Stream    // a run this publisher continues once it starts
	successor *Publisher // the publisher that took this one's place, and its run

	endOnce sync.Once
	endErr  error
	done    chan struct{}
}

// Route is what the publisher's key resolved to.
func (p *Publisher) Route() Route { return p.route }

// Touch records that the publisher sent data, which keeps it from being dropped as idle or
// taken over.
func (p *Publisher) Touch() { p.touch() }

func (p *Publisher) touch() { p.activity.Store(time.Now().UnixNano()) }

// watchClaim ends the publisher when another node takes its stream over.
func (p *Publisher) watchClaim() {
	p.hub.mu.Lock()
	claim := p.claim
	p.hub.mu.Unlock()
	if claim == nil {
		return
	}
	select {
	case <-claim.Lost():
		p.hub.log.Info("publisher taken over by another node", "stream", p.route.Name, "remote", p.remote)
		p.end(ErrTakenOver)
	case <-p.done:
	}
}

func (p *Publisher) lastActivity() time.Time { return time.Unix(0, p.activity.Load()) }

// run is the run the publisher writes to or will continue. Called with hub.mu held.
func (p *Publisher) run() *Stream {
	if s := p.stream.Load(); s != nil {
		return s
	}
	return p.inherit
}

func (p *Publisher) inheritedRun() *Stream {
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	return p.inherit
}

// Done is closed when the hub ends the publisher; Err then says why.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Err says why the publisher was ended, once Done is closed.
func (p *Publisher) Err() error {
	select {
	case <-p.done:
		return p.endErr
	default:
		return nil
	}
}

// Stream is the started stream, or nil before Start.
func (p *Publisher) Stream() *Stream { return p.stream.Load() }

// Start begins the stream once its tracks are known and opens every output's sink. A
// publisher that took over a run, or came back to it, continues that run when it sends
// the same tracks; the run's sinks then go on with a discontinuity.
func (p *Publisher) Start(tracks Tracks) (*Stream, error) {
	if tracks.Video == nil && tracks.Audio == nil {
		return nil, fmt.Errorf("start stream %q: no tracks", p.route.Name)
	}
	h := p.hub
	h.mu.Lock()
	select {
	case <-p.done:
		h.mu.Unlock()
		return nil, fmt.Errorf("start stream %q: %w", p.route.Name, p.endErr)
	default:
	}
	if p.stream.Load() != nil {
		h.mu.Unlock()
		return nil, fmt.Errorf("start stream %q: already started", p.route.Name)
	}
	if p.main != nil {
		h.mu.Unlock()
		return p.startRendition(tracks)
	}
	prev := p.inherit
	p.inherit = nil
	if prev != nil && prev.resume(p, tracks) {
		p.stream.Store(prev)
		h.mu.Unlock()
		h.log.Info("stream resumed", "stream", prev.Name(), "id", prev.ID(), "remote", p.remote)
		return prev, nil
	}
	h.mu.Unlock()
	if prev != nil {
		prev.end(errTracksChanged)
	}

	return p.open(newStream(p, tracks))
}

// open opens every output's sink on the new run s and makes it the publisher's.
func (p *Publisher) open(s *Stream) (*Stream, error) {
	h := p.hub
	for _, out := range h.cfg.Outputs {
		sink, err := out.OpenSink(s)
		if err != nil {
			h.log.Error("output refused stream", "stream", s.Name(), "output", fmt.Sprintf("%T", out), "err", err)
			continue
		}
		if sink != nil {
			s.addSink(sink, h.cfg.SinkQueue)
		}
	}
	p.stream.Store(s)
	h.log.Info("stream started", "stream", s.Name(), "rendition", s.Rendition(), "id", s.ID(), "remote", p.remote,
		"video", s.VideoCodec(), "audio", s.AudioCodec())

	// A publisher ended before the stream was stored would otherwise leave it open.
	select {
	case <-p.done:
		s.end(p.endErr)
	default:
	}
	return s, nil
}

// Write hands an access unit to every sink without waiting for any of them. The stream
// owns au from here on.
func (p *Publisher) Write(au *AccessUnit) {
	p.touch()
	if s := p.stream.Load(); s != nil {
		s.write(p, au)
	}
}

// Close ends the publisher from its own side: it unpublished, and its run ends.
func (p *Publisher) Close() { p.end(nil) }

// Refuse ends the publisher and its run for a reason its streamer must see (a codec onair
// cannot serve): the hub keeps it for LastRefusal.
func (p *Publisher) Refuse(reason error) {
	p.hub.noteRefusal(p.route.Name, reason)
	p.end(reason)
}

// Disconnected ends the publisher whose connection closed without unpublishing: its run
// waits TakeoverAfter for a publisher to continue it.
func (p *Publisher) Disconnected() { p.end(ErrDisconnected) }

func (p *Publisher) end(reason error) {
	p.endOnce.Do(func() {
		h := p.hub
		h.mu.Lock()
		p.endErr = reason
		close(p.done)
		if h.publishers[p.route.key()] == p {
			delete(h.publishers, p.route.key())
		}
		claim, run := p.claim, p.run()
		p.claim, p.inherit = nil, nil
		switch {
		case p.successor != nil:
			run = nil // the run and the claim went on with the successor
		case run != nil && errors.Is(reason, ErrDisconnected) && !run.isEnded() && p.main == nil:
			h.waitLocked(p.route.Name, run, claim, reason)
			// Under h.mu, so that the sinks hear of it before a returning publisher's
			// first access unit.
			run.pause()
			claim, run = nil, nil
		}
		h.mu.Unlock()
		if claim != nil {
			claim.Release()
		}
		if run != nil {
			run.end(reason)
		}
		if p.main == nil {
			h.endRenditions(p.route.Name, p)
		}
	})
}
