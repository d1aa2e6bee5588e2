package media

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordSink collects access units; if gate is set, each write waits on it.
type recordSink struct {
	mu     sync.Mutex
	got    []*AccessUnit
	gate   chan struct{}
	wrote  chan struct{}
	closed chan error
}

func newRecordSink(gated bool) *recordSink {
	s := &recordSink{closed: make(chan error, 1), wrote: make(chan struct{}, 1024)}
	if gated {
		s.gate = make(chan struct{})
	}
	return s
}

func (s *recordSink) WriteAccessUnit(au *AccessUnit) error {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	s.got = append(s.got, au)
	s.mu.Unlock()
	s.wrote <- struct{}{}
	return nil
}

func (s *recordSink) Close(err error) { s.closed <- err }

func (s *recordSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// pausingSink is a recordSink that takes the publisher's drop (Pauser) as a nil access unit.
type pausingSink struct{ *recordSink }

func (s pausingSink) Paused() {
	s.mu.Lock()
	s.got = append(s.got, nil)
	s.mu.Unlock()
	s.wrote <- struct{}{}
}

type outputFunc func(*Stream) (Sink, error)

func (f outputFunc) OpenSink(s *Stream) (Sink, error) { return f(s) }

var testTracks = Tracks{Audio: &AudioTrack{Codec: CodecAAC, SampleRate: 48000, Channels: 2}}

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("sink was not closed within 5 s")
		return nil
	}
}

func TestSlowSinkIsDroppedWithoutStallingOthers(t *testing.T) {
	fast, slow := newRecordSink(false), newRecordSink(true)
	hub := NewHub(HubConfig{
		SinkQueue: 4,
		Outputs: []Output{
			outputFunc(func(*Stream) (Sink, error) { return fast, nil }),
			outputFunc(func(*Stream) (Sink, error) { return slow, nil }),
		},
	})
	p, err := hub.Publish(context.Background(), Route{Name: "cam"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Start(testTracks); err != nil {
		t.Fatal(err)
	}
	const n = 100
	// Pace the publisher by the fast sink: it must get every unit while the slow one
	// reads nothing.
	for i := range n {
		p.Write(&AccessUnit{DTS: time.Duration(i) * time.Millisecond, Payload: [][]byte{{1}}})
		select {
		case <-fast.wrote:
		case <-time.After(5 * time.Second):
			t.Fatalf("fast sink stalled at unit %d", i)
		}
	}
	close(slow.gate)
	if err := waitErr(t, slow.closed); !errors.Is(err, ErrSinkTooSlow) {
		t.Fatalf("slow sink closed with %v, want ErrSinkTooSlow", err)
	}
	if hub.SinksDropped() != 1 {
		t.Fatalf("SinksDropped = %d, want 1", hub.SinksDropped())
	}
	p.Close()
	if err := waitErr(t, fast.closed); err != nil {
		t.Fatalf("fast sink closed with %v", err)
	}
	if fast.count() != n {
		t.Fatalf("fast sink got %d access units, want %d", fast.count(), n)
	}
	if got := p.Stream().Stats().AudioUnits; got != n {
		t.Fatalf("stats count %d units, want %d", got, n)
	}
}

func TestSecondPublisherRefusedThenTakesOverWhenQuiet(t *testing.T) {
	const quiet = 200 * time.Millisecond
	hub := NewHub(HubConfig{TakeoverAfter: quiet, IdleTimeout: time.Hour})
	first, err := hub.Publish(context.Background(), Route{Name: "cam"}, "a")
	if err != nil {
		t.Fatal(err)
	}
	first.Touch()
	lastData := time.Now()
	if _, err := hub.Publish(context.Background(), Route{Name: "cam"}, "b"); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("second publisher: %v, want ErrStreamBusy", err)
	}
	// Another name is independent.
	if _, err := hub.Publish(context.Background(), Route{Name: "other"}, "c"); err != nil {
		t.Fatalf("publisher on another stream: %v", err)
	}

	deadline := time.Now().Add(5 * time.Second)
	var second *Publisher
	for second == nil {
		p, err := hub.Publish(context.Background(), Route{Name: "cam"}, "b")
		switch {
		case err == nil:
			second = p
		case !errors.Is(err, ErrStreamBusy):
			t.Fatal(err)
		case time.Now().After(deadline):
			t.Fatal("no take-over within 5 s")
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
	if since := time.Since(lastData); since < quiet {
		t.Fatalf("took over after %s of silence, want at least %s", since, quiet)
	}
	select {
	case <-first.Done():
	default:
		t.Fatal("the replaced publisher was not ended")
	}
	if !errors.Is(first.Err(), ErrTakenOver) {
		t.Fatalf("first publisher ended with %v, want ErrTakenOver", first.Err())
	}
	// The replaced publisher leaving must not release the new one's claim.
	first.Close()
	if _, err := hub.Publish(context.Background(), Route{Name: "cam"}, "c"); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("after the old publisher closed: %v, want ErrStreamBusy", err)
	}
	second.Close()
	if _, err := hub.Publish(context.Background(), Route{Name: "cam"}, "c"); err != nil {
		t.Fatalf("after the publisher closed, the stream is free: %v", err)
	}
}

func TestIdlePublisherIsDropped(t *testing.T) {
	hub := NewHub(HubConfig{TakeoverAfter: 50 * time.Millisecond, IdleTimeout: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hub.Run(ctx)
	p, err := hub.Publish(context.Background(), Route{Name: "cam"}, "a")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("idle publisher not dropped")
	}
	if !errors.Is(p.Err(), ErrIdle) {
		t.Fatalf("ended with %v, want ErrIdle", p.Err())
	}
}

func TestStopEndsStreamAndSinks(t *testing.T) {
	sink := newRecordSink(false)
	hub := NewHub(HubConfig{Outputs: []Output{outputFunc(func(*Stream) (Sink, error) { return sink, nil })}})
	p, err := hub.Publish(context.Background(), Route{Name: "cam"}, "a")
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Start(testTracks)
	if err != nil {
		t.Fatal(err)
	}
	if hub.Stream("cam") != s || len(hub.Streams()) != 1 {
		t.Fatal("started stream is not listed")
	}
	if !hub.Stop("cam", ErrStopped) {
		t.Fatal("Stop did not find the stream")
	}
	if err := waitErr(t, sink.closed); err != nil {
		t.Fatalf("sink closed with %v, want nil on a normal end", err)
	}
	<-s.Done()
	if !errors.Is(s.Err(), ErrStopped) || !errors.Is(p.Err(), ErrStopped) {
		t.Fatalf("stream err %v, publisher err %v, want ErrStopped", s.Err(), p.Err())
	}
	if hub.Stream("cam") != nil {
		t.Fatal("stopped stream still listed")
	}
	// Writes after the end are ignored, not a panic on a closed queue.
	p.Write(&AccessUnit{Payload: [][]byte{{1}}})
	if _, err := p.Start(testTracks); err == nil {
		t.Fatal("Start after the end succeeded")
	}
}

func TestStaticKeys(t *testing.T) {
	keys := StaticKeys{"0123456789abcdef": {Name: "cam"}}
	tests := []struct {
		key     string
		want    string
		wantErr error
	}{
		{"0123456789abcdef", "cam", nil},
		{"0123456789abcdeF", "", ErrUnknownKey},
		{"", "", ErrUnknownKey},
	}
	for _, tt := range tests {
		r, err := keys.ResolveKey(context.Background(), tt.key)
		if !errors.Is(err, tt.wantErr) || r.Name != tt.want {
			t.Errorf("ResolveKey(%q) = %q, %v; want %q, %v", tt.key, r.Name, err, tt.want, tt.wantErr)
		}
	}
	if id := KeyID("0123456789abcdef"); len(id) != 12 || id == KeyID("0123456789abcdeF") {
		t.Errorf("KeyID gives %q", id)
	}
}

func TestRateWindow(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(1000, 0)
	for sec := range 3 {
		for f := range 30 {
			w.add(t0.Add(time.Duration(sec)*time.Second+time.Duration(f)*33*time.Millisecond), 1000, true)
		}
	}
	// Seconds 1000..1002 are complete once 1003 begins.
	bitrate, fps := w.rates(t0.Add(3 * time.Second))
	if bitrate != 240_000 || fps != 30 {
		t.Fatalf("rates = %d b/s, %.1f fps; want 240000, 30", bitrate, fps)
	}
	// After a silence longer than the window, nothing is counted.
	if b, f := w.rates(t0.Add(20 * time.Second)); b != 0 || f != 0 {
		t.Fatalf("after silence: %d, %.1f", b, f)
	}
}

// fakeClaims stands in for the cluster: one holder per stream name across "nodes".
type fakeClaims struct {
	mu       sync.Mutex
	held     map[string]*fakeClaim
	busy     map[string]bool // held by a publisher on another node
	released []string
}

type fakeClaim struct {
	c    *fakeClaims
	name string
	lost chan struct{}
}

func (c *fakeClaims) Claim(_ context.Context, name string, _ time.Duration) (Claim, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy[name] || c.held[name] != nil {
		return nil, ErrStreamBusy
	}
	cl := &fakeClaim{c: c, name: name, lost: make(chan struct{})}
	c.held[name] = cl
	return cl, nil
}

func (c *fakeClaim) Lost() <-chan struct{} { return c.lost }

func (c *fakeClaim) Release() {
	c.c.mu.Lock()
	defer c.c.mu.Unlock()
	delete(c.c.held, c.name)
	c.c.released = append(c.c.released, c.name)
}

func (c *fakeClaims) holder(name string) *fakeClaim {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[name]
}

func TestClaimsAcrossNodes(t *testing.T) {
	claims := &fakeClaims{held: map[string]*fakeClaim{}, busy: map[string]bool{"remote": true}}
	hub := NewHub(HubConfig{TakeoverAfter: time.Millisecond, IdleTimeout: time.Hour, Claims: claims})
	ctx := context.Background()

	if _, err := hub.Publish(ctx, Route{Name: "remote"}, "a"); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("publish of a stream held on another node: %v, want ErrStreamBusy", err)
	}
	first, err := hub.Publish(ctx, Route{Name: "cam"}, "a")
	if err != nil {
		t.Fatal(err)
	}
	claim := claims.holder("cam")
	// A takeover on this node keeps the node's claim: no second claim, no release.
	time.Sleep(2 * time.Millisecond) // first is quiet for TakeoverAfter
	second, err := hub.Publish(ctx, Route{Name: "cam"}, "b")
	if err != nil {
		t.Fatal(err)
	}
	<-first.Done()
	if claims.holder("cam") != claim || len(claims.released) != 0 {
		t.Fatalf("local takeover changed the claim: holder %v, released %v", claims.holder("cam"), claims.released)
	}
	// Another node taking the stream over ends the publisher here.
	close(claim.lost)
	select {
	case <-second.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("publisher not ended when its claim was lost")
	}
	if !errors.Is(second.Err(), ErrTakenOver) {
		t.Fatalf("publisher ended with %v, want ErrTakenOver", second.Err())
	}
	if claims.holder("cam") != nil || len(claims.released) != 1 {
		t.Fatalf("claim not released once: released %v", claims.released)
	}
}

func publishStarted(t *testing.T, hub *Hub, remote string, tracks Tracks) (*Publisher, *Stream) {
	t.Helper()
	p, err := hub.Publish(context.Background(), Route{Name: "cam"}, remote)
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Start(tracks)
	if err != nil {
		t.Fatal(err)
	}
	return p, s
}

func waitWrites(t *testing.T, s *recordSink, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.wrote:
		case <-time.After(5 * time.Second):
			t.Fatal("sink did not get the access unit")
		}
	}
}

// A publisher whose connection drops and that comes back within the takeover window
// continues its run: the same stream, the same sinks, timestamps going on from where the
// run was, the first access unit marked as a discontinuity. Sinks that ask (Pauser) hear of
// the drop, between the two publishers' access units.
func TestDroppedPublisherComesBackToItsRun(t *testing.T) {
	sink := newRecordSink(false)
	opened := 0
	hub := NewHub(HubConfig{TakeoverAfter: time.Second, IdleTimeout: time.Hour,
		Outputs: []Output{outputFunc(func(*Stream) (Sink, error) { opened++; return pausingSink{sink}, nil })}})
	first, run := publishStarted(t, hub, "a", testTracks)
	for i := range 3 {
		first.Write(&AccessUnit{DTS: time.Duration(i) * 20 * time.Millisecond, Payload: [][]byte{{1}}})
	}
	waitWrites(t, sink, 3)
	first.Disconnected()
	waitWrites(t, sink, 1)
	if hub.Stream("cam") != run || len(hub.Streams()) != 1 {
		t.Fatal("a run waiting for its publisher is not live")
	}
	select {
	case <-run.Done():
		t.Fatal("the run ended when its publisher dropped")
	case <-time.After(100 * time.Millisecond):
	}

	second, again := publishStarted(t, hub, "b", testTracks)
	if again != run || opened != 1 {
		t.Fatalf("the returning publisher got a new run (same: %v, sinks opened %d)", again == run, opened)
	}
	second.Write(&AccessUnit{DTS: 0, Payload: [][]byte{{2}}})
	second.Write(&AccessUnit{DTS: 20 * time.Millisecond, Payload: [][]byte{{2}}})
	waitWrites(t, sink, 2)
	sink.mu.Lock()
	paused, got := sink.got[3], sink.got[4:]
	sink.mu.Unlock()
	if paused != nil {
		t.Fatalf("the sink was not told of the drop before the returning publisher's %+v", paused)
	}
	// The run ended at 40 ms + the 20 ms its last frame lasts.
	if !got[0].Discontinuity || got[0].DTS != 60*time.Millisecond || got[1].Discontinuity || got[1].DTS != 80*time.Millisecond {
		t.Fatalf("continued access units: %+v, %+v", got[0], got[1])
	}
	first.Write(&AccessUnit{Payload: [][]byte{{3}}}) // the dropped connection's late data is ignored
	second.Close()
	if err := waitErr(t, sink.closed); err != nil {
		t.Fatalf("sink closed with %v", err)
	}
	if sink.count() != 6 {
		t.Fatalf("sink got %d access units and pauses, want 6", sink.count())
	}
}

func TestDroppedPublisherThatDoesNotComeBack(t *testing.T) {
	claims := &fakeClaims{held: map[string]*fakeClaim{}, busy: map[string]bool{}}
	hub := NewHub(HubConfig{TakeoverAfter: 100 * time.Millisecond, IdleTimeout: time.Hour, Claims: claims})
	p, run := publishStarted(t, hub, "a", testTracks)
	dropped := time.Now()
	p.Disconnected()
	select {
	case <-run.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the run of a publisher that never came back did not end")
	}
	if waited := time.Since(dropped); waited < 100*time.Millisecond {
		t.Fatalf("the run ended %s after the drop, want the takeover window", waited)
	}
	if !errors.Is(run.Err(), ErrDisconnected) || hub.Stream("cam") != nil || len(claims.released) != 1 {
		t.Fatalf("run ended with %v; listed %v; claims released %v", run.Err(), hub.Stream("cam") != nil, claims.released)
	}
}

func TestRunEndsWithoutWaiting(t *testing.T) {
	other := Tracks{Audio: &AudioTrack{Codec: CodecAAC, SampleRate: 44100, Channels: 2}}
	cases := []struct {
		name string
		end  func(hub *Hub, p *Publisher) *Stream // ends the first publisher's run; returns the next run
		want error
	}{
		{"unpublished", func(_ *Hub, p *Publisher) *Stream { p.Close(); return nil }, nil},
		{"stopped while waiting", func(hub *Hub, p *Publisher) *Stream {
			p.Disconnected()
			hub.Stop("cam", ErrStopped)
			return nil
		}, ErrStopped},
		{"back with other tracks", func(hub *Hub, p *Publisher) *Stream {
			p.Disconnected()
			_, s := publishStarted(t, hub, "b", other)
			return s
		}, errTracksChanged},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hub := NewHub(HubConfig{TakeoverAfter: time.Hour, IdleTimeout: time.Hour})
			p, run := publishStarted(t, hub, "a", testTracks)
			next := c.end(hub, p)
			select {
			case <-run.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("run still going")
			}
			if !errors.Is(run.Err(), c.want) {
				t.Fatalf("run ended with %v, want %v", run.Err(), c.want)
			}
			if next == run {
				t.Fatal("the run went on")
			}
		})
	}
}

// A takeover of a quiet publisher (OBS reconnecting while its old connection hangs)
// continues the run too.
func TestTakeoverContinuesTheRun(t *testing.T) {
	sink := newRecordSink(false)
	hub := NewHub(HubConfig{TakeoverAfter: 50 * time.Millisecond, IdleTimeout: time.Hour,
		Outputs: []Output{outputFunc(func(*Stream) (Sink, error) { return sink, nil })}})
	first, run := publishStarted(t, hub, "a", testTracks)
	first.Write(&AccessUnit{DTS: 0, Payload: [][]byte{{1}}})
	waitWrites(t, sink, 1)
	time.Sleep(60 * time.Millisecond)
	_, again := publishStarted(t, hub, "b", testTracks)
	if again != run {
		t.Fatal("the takeover started a new run")
	}
	<-first.Done()
	select {
	case <-run.Done():
		t.Fatal("the taken-over publisher's end ended the run")
	default:
	}
}

// A refused publisher ends its run at once, and the hub keeps the reason for the
// streamer's dashboard.
func TestRefusedPublisherKeepsItsReason(t *testing.T) {
	hub := NewHub(HubConfig{IdleTimeout: time.Hour})
	if _, ok := hub.LastRefusal("cam"); ok {
		t.Fatal("a refusal before any publish")
	}
	p, _ := publishStarted(t, hub, "a", Tracks{Video: &VideoTrack{Codec: CodecH264}})
	reason := errors.New(`audio tag: fourcc "ac-3" (AC-3): unsupported codec`)
	p.Refuse(reason)
	if !errors.Is(p.Err(), reason) || hub.Stream("cam") != nil {
		t.Fatalf("refused publisher: err %v, stream %v", p.Err(), hub.Stream("cam"))
	}
	r, ok := hub.LastRefusal("cam")
	if !ok || r.Reason != reason.Error() || r.At.IsZero() {
		t.Fatalf("last refusal %+v, %v", r, ok)
	}
}

// Refusals lists the newest refusals first, at most the limit, each reason bounded: it
// goes into this node's heartbeat for the other nodes' dashboards.
func TestRefusalsNewestFirst(t *testing.T) {
	hub := NewHub(HubConfig{IdleTimeout: time.Hour})
	hub.noteRefusal("a", errors.New("first"))
	hub.noteRefusal("b", errors.New(strings.Repeat("x", 2*maxRefusalReason)))
	hub.noteRefusal("a", errors.New("again"))
	got := hub.Refusals(1)
	if len(got) != 1 || got[0].Name != "a" || got[0].Reason != "again" {
		t.Fatalf("Refusals(1) = %+v", got)
	}
	got = hub.Refusals(10)
	if len(got) != 2 || got[1].Name != "b" || len(got[1].Reason) > maxRefusalReason+len("…") {
		t.Fatalf("Refusals(10) = %d entries: %+v", len(got), got)
	}
}
