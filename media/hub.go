package media

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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
	// ErrSinkTooSlow is the reason given to a sink that could not keep up.
	ErrSinkTooSlow = errors.New("sink could not keep up with the stream")
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

// HubConfig configures a Hub.
type HubConfig struct {
	Logger  *slog.Logger
	Outputs []Output
	// SinkQueue is how many access units a sink may fall behind before it is dropped.
	SinkQueue int
	// TakeoverAfter is how long a live publisher must have been quiet before a new
	// connection on the same stream replaces it (OBS reconnecting after a network drop).
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
type Hub struct {
	cfg HubConfig
	log *slog.Logger

	mu         sync.Mutex
	publishers map[string]*Publisher
	claiming   map[string]bool // streams whose claim is being made

	sinksDropped atomic.Int64
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
	return &Hub{cfg: cfg, log: cfg.Logger, publishers: map[string]*Publisher{}, claiming: map[string]bool{}}
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

	h.mu.Lock()
	old := h.publishers[route.Name]
	if err := h.busy(old); err != nil {
		h.mu.Unlock()
		return nil, fmt.Errorf("publish %q: %w", route.Name, err)
	}
	if old != nil {
		// A takeover on this node keeps the node's claim on the stream.
		p.claim, old.claim = old.claim, nil
		h.publishers[route.Name] = p
		h.mu.Unlock()
		h.log.Info("publisher taken over", "stream", route.Name, "old_remote", old.remote, "new_remote", remote)
		old.end(ErrTakenOver)
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

// Stop ends the stream called name, if it is live, and reports whether it was.
func (h *Hub) Stop(name string, reason error) bool {
	h.mu.Lock()
	p := h.publishers[name]
	h.mu.Unlock()
	if p == nil {
		return false
	}
	p.end(reason)
	return true
}

// StopAll ends every stream.
func (h *Hub) StopAll(reason error) {
	for _, p := range h.snapshot() {
		p.end(reason)
	}
}

// Stream returns the live stream called name, or nil.
func (h *Hub) Stream(name string) *Stream {
	h.mu.Lock()
	p := h.publishers[name]
	h.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Stream()
}

// Streams lists the live streams that have started.
func (h *Hub) Streams() []*Stream {
	var out []*Stream
	for _, p := range h.snapshot() {
		if s := p.Stream(); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// SinksDropped counts sinks dropped for being too slow since the hub was made.
func (h *Hub) SinksDropped() int64 { return h.sinksDropped.Load() }

// Activity lists the streams published on this node and when each last received data.
func (h *Hub) Activity() map[string]time.Time {
	out := map[string]time.Time{}
	for _, p := range h.snapshot() {
		out[p.route.Name] = p.lastActivity()
	}
	return out
}

// release forgets p and gives up the stream's claim unless a successor took it over.
func (h *Hub) release(p *Publisher) {
	h.mu.Lock()
	if h.publishers[p.route.Name] == p {
		delete(h.publishers, p.route.Name)
	}
	claim := p.claim
	p.claim = nil
	h.mu.Unlock()
	if claim != nil {
		claim.Release()
	}
}

// Publisher is one connection's claim on a stream. Its methods are called from the
// connection's goroutine; Done and End may be used from anywhere.
type Publisher struct {
	hub    *Hub
	route  Route
	remote string

	activity atomic.Int64 // unix nanoseconds of the last data received
	stream   atomic.Pointer[Stream]
	claim    Claim // guarded by hub.mu; moves to the successor of a takeover on this node

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

// Start begins the stream once its tracks are known and opens every output's sink.
func (p *Publisher) Start(tracks Tracks) (*Stream, error) {
	if tracks.Video == nil && tracks.Audio == nil {
		return nil, fmt.Errorf("start stream %q: no tracks", p.route.Name)
	}
	select {
	case <-p.done:
		return nil, fmt.Errorf("start stream %q: %w", p.route.Name, p.endErr)
	default:
	}
	if p.stream.Load() != nil {
		return nil, fmt.Errorf("start stream %q: already started", p.route.Name)
	}
	s := newStream(p, tracks)
	for _, out := range p.hub.cfg.Outputs {
		sink, err := out.OpenSink(s)
		if err != nil {
			p.hub.log.Error("output refused stream", "stream", s.Name(), "output", fmt.Sprintf("%T", out), "err", err)
			continue
		}
		if sink != nil {
			s.addSink(sink, p.hub.cfg.SinkQueue)
		}
	}
	p.stream.Store(s)
	p.hub.log.Info("stream started", "stream", s.Name(), "id", s.ID(), "remote", p.remote,
		"video", s.VideoCodec(), "audio", s.AudioCodec())

	// A publisher ended before the stream was stored would otherwise leave it open.
	select {
	case <-p.done:
		s.end(p.endErr)
	default:
	}
	return s, nil
}

// Write hands an access unit to every sink without waiting for any of them.
func (p *Publisher) Write(au *AccessUnit) {
	p.touch()
	if s := p.stream.Load(); s != nil {
		s.write(au)
	}
}

// Close ends the publisher from its own side: the connection closed or unpublished.
func (p *Publisher) Close() { p.end(nil) }

func (p *Publisher) end(reason error) {
	p.endOnce.Do(func() {
		p.endErr = reason
		close(p.done)
		p.hub.release(p)
		if s := p.stream.Load(); s != nil {
			s.end(reason)
		}
	})
}

// Stream is one run of a publisher, from its first access unit to its end.
type Stream struct {
	id        string
	route     Route
	tracks    Tracks
	startedAt time.Time
	log       *slog.Logger
	hub       *Hub

	mu    sync.Mutex // guards sinks and ended against write racing end
	sinks []*sinkQueue
	ended bool

	done   chan struct{}
	endErr error

	bytes      atomic.Int64
	videoUnits atomic.Int64
	audioUnits atomic.Int64
	lastDTS    atomic.Int64
	rate       rateWindow // guarded by mu
}

func newStream(p *Publisher, tracks Tracks) *Stream {
	return &Stream{
		id:        newID(),
		route:     p.route,
		tracks:    tracks,
		startedAt: time.Now(),
		log:       p.hub.log,
		hub:       p.hub,
		done:      make(chan struct{}),
	}
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

// Done is closed when the stream has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err says why the stream ended (nil for a normal end), once Done is closed.
func (s *Stream) Err() error {
	<-s.done
	return s.endErr
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
	q := &sinkQueue{sink: sink, ch: make(chan *AccessUnit, size)}
	s.sinks = append(s.sinks, q)
	go q.run()
}

func (s *Stream) write(au *AccessUnit) {
	s.bytes.Add(int64(au.Size()))
	if au.Video {
		s.videoUnits.Add(1)
	} else {
		s.audioUnits.Add(1)
	}
	s.lastDTS.Store(int64(au.DTS))

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.rate.add(au.Received, au.Size(), au.Video)
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
}

func (q *sinkQueue) run() {
	var err error
	for au := range q.ch {
		if err != nil {
			continue // drain so that the publisher never blocks
		}
		err = q.sink.WriteAccessUnit(au)
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
