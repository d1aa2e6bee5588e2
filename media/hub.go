package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors a publisher can meet.
var (
	// ErrStreamBusy: another publisher is live on the stream and still sending.
	ErrStreamBusy = errors.New("stream is already being published")
	// ErrTakenOver: a new publisher replaced this one after it went quiet.
	ErrTakenOver = errors.New("publisher replaced by a new connection")
	// ErrIdle: the publisher sent nothing for too long.
	ErrIdle = errors.New("publisher sent nothing for too long")
	// ErrStopped: the stream was stopped on purpose (key rotated, room deleted, shutdown).
	ErrStopped = errors.New("stream stopped")
	// ErrDisconnected: the publisher's connection closed without unpublishing (a network
	// drop, a crashed encoder). Its run waits TakeoverAfter for the publisher to come back.
	ErrDisconnected = errors.New("publisher's connection closed without unpublishing")
	// ErrSinkTooSlow is the reason given to a sink that could not keep up.
	ErrSinkTooSlow = errors.New("sink could not keep up with the stream")
	// errTracksChanged ends a run whose returning publisher sends other tracks.
	errTracksChanged = errors.New("the reconnected publisher sends other tracks: a new run starts")
)

// Output creates a sink for every stream that starts: HLS, the recorder, stream events.
type Output interface {
	// OpenSink is called once per stream, when its tracks are known. It returns nil, nil to
	// skip the stream. Outputs that only need to know when a stream starts and ends can
	// return nil and wait on Stream.Done.
	OpenSink(s *Stream) (Sink, error)
}

// Sink receives one stream's access units, in order, on a goroutine of its own.
type Sink interface {
	WriteAccessUnit(au *AccessUnit) error
	// Close is called once, after the last WriteAccessUnit. err is nil when the stream ended
	// normally, ErrSinkTooSlow when the sink was dropped, or the error WriteAccessUnit returned.
	Close(err error)
}

// Pauser is a Sink that is told, in order with its access units, when the run's publisher
// dropped and the run waits for one to come back: what the sink holds back for the next
// access unit (a part being cut) should go out now, as the next may come seconds later.
type Pauser interface {
	Paused()
}

// HubConfig configures a Hub.
type HubConfig struct {
	Logger  *slog.Logger
	Outputs []Output
	// SinkQueue is how many access units a sink may fall behind before it is dropped.
	SinkQueue int
	// TakeoverAfter is how long a live publisher must have been quiet before a new
	// connection on the same stream replaces it (OBS reconnecting after a network drop),
	// and how long the run of a publisher whose connection dropped waits for it to come
	// back. Either way the new connection continues the same run.
	TakeoverAfter time.Duration
	// IdleTimeout drops a publisher that has sent nothing for this long.
	IdleTimeout time.Duration
	// Claims, when set, gives each stream one publisher across the nodes that share it.
	Claims StreamClaims
}

// StreamClaims decides which node's publisher holds a stream when several nodes can
// take publishers for it.
type StreamClaims interface {
	// Claim is asked before a publisher is accepted on a stream that has none on this
	// node. It fails with ErrStreamBusy while a publisher on another node holds the stream
	// and has sent data within quiet (or that node has not been given up for dead); else
	// the stream is this node's until the Claim is released or lost.
	Claim(ctx context.Context, name string, quiet time.Duration) (Claim, error)
}

// Claim is this node's hold on a stream.
type Claim interface {
	// Lost is closed when another node took the stream over.
	Lost() <-chan struct{}
	// Release gives the stream up; the hub calls it once its last publisher has ended.
	Release()
}

// Hub knows every stream being published and gives each one publisher.
//
// A run (a Stream) outlives its publisher within the takeover window: a new connection
// that takes a quiet publisher's place, or that comes back within TakeoverAfter of a
// connection that dropped, continues the same run with the same tracks, so that players
// and the recording go on. A publisher that unpublishes, is stopped, or sends other
// tracks ends its run.
type Hub struct {
	cfg HubConfig
	log *slog.Logger

	mu         sync.Mutex
	publishers map[string]*Publisher
	waiting    map[string]*waitingRun // runs whose publisher dropped, by stream name
	claiming   map[string]bool        // streams whose claim is being made
	refusals   map[string]Refusal     // the last refused publish of each stream
	changed    chan struct{}          // closed and replaced when a main publisher arrives

	sinksDropped atomic.Int64
}

// waitingRun is a run without a publisher, kept for TakeoverAfter.
type waitingRun struct {
	run    *Stream
	claim  Claim
	reason error
	timer  *time.Timer
	taken  chan struct{} // closed when a publisher continues the run
}

// NewHub returns a hub; Run must be running for idle publishers to be dropped.
func NewHub(cfg HubConfig) *Hub {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SinkQueue <= 0 {
		cfg.SinkQueue = 1024
	}
	if cfg.TakeoverAfter <= 0 {
		cfg.TakeoverAfter = 5 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Second
	}
	return &Hub{cfg: cfg, log: cfg.Logger, publishers: map[string]*Publisher{},
		waiting: map[string]*waitingRun{}, claiming: map[string]bool{}, refusals: map[string]Refusal{},
		changed: make(chan struct{})}
}

// Run drops idle publishers until ctx ends, then stops every stream.
func (h *Hub) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			h.StopAll(ErrStopped)
			return nil
		case now := <-tick.C:
			for _, p := range h.snapshot() {
				if now.Sub(p.lastActivity()) >= h.cfg.IdleTimeout {
					p.end(ErrIdle)
				}
			}
		}
	}
}

func (h *Hub) snapshot() []*Publisher {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := make([]*Publisher, 0, len(h.publishers))
	for _, p := range h.publishers {
		ps = append(ps, p)
	}
	return ps
}

func (h *Hub) waitingRuns() map[string]*waitingRun {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]*waitingRun, len(h.waiting))
	for name, w := range h.waiting {
		out[name] = w
	}
	return out
}

// Publish claims route.Name for a new publisher. It fails with ErrStreamBusy while another
// publisher is live and sending, here or (with Claims) on another node, and replaces one
// that has been quiet for TakeoverAfter.
func (h *Hub) Publish(ctx context.Context, route Route, remote string) (*Publisher, error) {
	p := &Publisher{
		hub:    h,
		route:  route,
		remote: remote,
		done:   make(chan struct{}),
	}
	p.touch()
	if route.Rendition != "" {
		return h.publishRendition(ctx, p)
	}

	h.mu.Lock()
	old := h.publishers[route.Name]
	if err := h.busy(old); err != nil {
		h.mu.Unlock()
		return nil, fmt.Errorf("publish %q: %w", route.Name, err)
	}
	if old != nil {
		// A takeover on this node keeps the node's claim on the stream, and its run.
		p.claim, old.claim = old.claim, nil
		p.inherit = old.run()
		old.successor = p
		h.publishers[route.Name] = p
		h.notifyLocked()
		h.mu.Unlock()
		h.log.Info("publisher taken over", "stream", route.Name, "old_remote", old.remote, "new_remote", remote)
		old.end(ErrTakenOver)
		go p.watchClaim()
		return p, nil
	}
	if w := h.waiting[route.Name]; w != nil {
		delete(h.waiting, route.Name)
		w.timer.Stop()
		close(w.taken)
		p.claim, p.inherit = w.claim, w.run
		h.publishers[route.Name] = p
		h.notifyLocked()
		h.mu.Unlock()
		h.log.Info("publisher came back to its run", "stream", route.Name, "id", w.run.ID(), "remote", remote)
		go p.watchClaim()
		return p, nil
	}
	if h.claiming[route.Name] {
		h.mu.Unlock()
		return nil, fmt.Errorf("publish %q: %w (another connection is starting to publish)", route.Name, ErrStreamBusy)
	}
	// While the claim is made, other connections for the stream are refused, so that this
	// node asks for it once.
	h.claiming[route.Name] = true
	h.mu.Unlock()

	var claim Claim
	var err error
	if h.cfg.Claims != nil {
		claim, err = h.cfg.Claims.Claim(ctx, route.Name, h.cfg.TakeoverAfter)
	}
	h.mu.Lock()
	delete(h.claiming, route.Name)
	if err == nil {
		p.claim = claim
		h.publishers[route.Name] = p
		h.notifyLocked()
	}
	h.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("publish %q: %w", route.Name, err)
	}
	go p.watchClaim()
	return p, nil
}

// busy says why old, the stream's publisher on this node, may not be replaced (nil: it
// may, or there is none). Called with h.mu held.
func (h *Hub) busy(old *Publisher) error {
	if old == nil {
		return nil
	}
	if idle := time.Since(old.lastActivity()); idle < h.cfg.TakeoverAfter {
		return fmt.Errorf("%w (last data %s ago)", ErrStreamBusy, idle.Round(time.Millisecond))
	}
	return nil
}

// waitLocked keeps run, whose publisher's connection dropped, for TakeoverAfter: a
// publisher that comes back meanwhile continues it. Called with h.mu held.
func (h *Hub) waitLocked(name string, run *Stream, claim Claim, reason error) {
	w := &waitingRun{run: run, claim: claim, reason: reason, taken: make(chan struct{})}
	h.waiting[name] = w
	w.timer = time.AfterFunc(h.cfg.TakeoverAfter, func() { h.endWaiting(name, w, reason) })
	if claim != nil {
		go func() {
			select {
			case <-claim.Lost():
				h.log.Info("stream taken over by another node while its publisher was away", "stream", name)
				h.endWaiting(name, w, ErrTakenOver)
			case <-w.taken:
			}
		}()
	}
	h.log.Info("publisher dropped; its run waits for it to come back", "stream", name, "id", run.ID(),
		"wait", h.cfg.TakeoverAfter, "reason", reason)
}

// endWaiting ends a waiting run, unless a publisher took it meanwhile.
func (h *Hub) endWaiting(name string, w *waitingRun, reason error) {
	h.mu.Lock()
	if h.waiting[name] != w {
		h.mu.Unlock()
		return
	}
	delete(h.waiting, name)
	w.timer.Stop()
	close(w.taken)
	h.mu.Unlock()
	if w.claim != nil {
		w.claim.Release()
	}
	w.run.end(reason)
}

// Stop ends the stream called name, if it is live, and reports whether it was.
func (h *Hub) Stop(name string, reason error) bool {
	h.mu.Lock()
	p := h.publishers[name]
	w := h.waiting[name]
	h.mu.Unlock()
	if w != nil {
		h.endWaiting(name, w, reason)
	}
	if p != nil {
		p.end(reason)
	}
	return p != nil || w != nil
}

// StopAll ends every stream.
func (h *Hub) StopAll(reason error) {
	for _, p := range h.snapshot() {
		p.end(reason)
	}
	for name, w := range h.waitingRuns() {
		h.endWaiting(name, w, reason)
	}
}

// Stream returns the live stream called name, or nil. A run waiting for its publisher to
// come back is live.
func (h *Hub) Stream(name string) *Stream {
	h.mu.Lock()
	p := h.publishers[name]
	w := h.waiting[name]
	h.mu.Unlock()
	switch {
	case p != nil:
		if s := p.Stream(); s != nil {
			return s
		}
		return p.inheritedRun()
	case w != nil:
		return w.run
	}
	return nil
}

// Streams lists the live streams that have started.
func (h *Hub) Streams() []*Stream {
	var out []*Stream
	for _, p := range h.snapshot() {
		if p.route.Rendition != "" {
			continue // listed by Renditions, beside their stream
		}
		if s := p.Stream(); s != nil {
			out = append(out, s)
		} else if s := p.inheritedRun(); s != nil {
			out = append(out, s)
		}
	}
	for _, w := range h.waitingRuns() {
		out = append(out, w.run)
	}
	return out
}

// SinksDropped counts sinks dropped for being too slow since the hub was made.
func (h *Hub) SinksDropped() int64 { return h.sinksDropped.Load() }

// Activity lists the streams published on this node and when each last received data.
func (h *Hub) Activity() map[string]time.Time {
	out := map[string]time.Time{}
	for _, p := range h.snapshot() {
		if p.route.Rendition == "" {
			out[p.route.Name] = p.lastActivity()
		}
	}
	for name, w := range h.waitingRuns() {
		out[name] = w.run.LastData()
	}
	return out
}

// Refusal is why a publisher of a stream was refused after its key was accepted (a codec
// onair cannot serve, a rendition without its main or not aligned with it), kept for the
// streamer's dashboard.
type Refusal struct {
	At     time.Time
	Reason string
}

// StreamRefusal is a stream's last refusal, as Refusals lists them.
type StreamRefusal struct {
	Name string
	Refusal
}

// Bounds of the refusals a hub keeps. Only publishers with a valid stream key get this
// far, so the names are the streams' own; the count guards against very many rooms.
const (
	maxRefusals = 4096
	// maxRefusalReason bounds a reason's bytes: it is shown, and reported to the other
	// nodes in this node's heartbeat.
	maxRefusalReason = 512
	// RefusalTTL is how long a refusal is kept: long enough for a streamer to look at the
	// dashboard after the encoder gave up, short enough that an old mistake, fixed since,
	// does not linger.
	RefusalTTL = 10 * time.Minute
)

func (h *Hub) noteRefusal(name string, reason error) {
	msg := reason.Error()
	if len(msg) > maxRefusalReason {
		msg = strings.ToValidUTF8(msg[:maxRefusalReason], "") + "…"
	}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.refusals[name]; !ok && len(h.refusals) >= maxRefusals {
		for n, r := range h.refusals { // expired ones first
			if now.Sub(r.At) >= RefusalTTL {
				delete(h.refusals, n)
			}
		}
		for n := range h.refusals { // else any one: the map is a courtesy, not a log
			if len(h.refusals) < maxRefusals {
				break
			}
			delete(h.refusals, n)
		}
	}
	h.refusals[name] = Refusal{At: now, Reason: msg}
}

// LastRefusal is the last refusal of a publisher of the stream called name on this node,
// within RefusalTTL.
func (h *Hub) LastRefusal(name string) (Refusal, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.refusals[name]
	if ok && time.Since(r.At) >= RefusalTTL {
		delete(h.refusals, name)
		return Refusal{}, false
	}
	return r, ok
}

// Refusals lists the newest refusals of this node within RefusalTTL, at most limit of
// them, newest first: what this node tells the others, whose dashboards show them too.
func (h *Hub) Refusals(limit int) []StreamRefusal {
	now := time.Now()
	h.mu.Lock()
	out := make([]StreamRefusal, 0, min(limit, len(h.refusals)))
	for name, r := range h.refusals {
		if now.Sub(r.At) < RefusalTTL {
			out = append(out, StreamRefusal{Name: name, Refusal: r})
		}
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}
