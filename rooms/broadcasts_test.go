package rooms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/media"
	"onair/rooms/cluster"
	"onair/scripts/testenv"
)

// testHub is a real media hub whose outputs include the Service, as cmd/onair wires it
// (hubRooms).
type testHub struct {
	e    *testEnv
	hub  *media.Hub
	mu   sync.Mutex
	pubs map[string]*media.Publisher // by stream key
}

func newTestHub(e *testEnv) *testHub {
	return newTestHubWith(e, e.svc, media.HubConfig{})
}

func newTestHubWith(e *testEnv, svc *Service, cfg media.HubConfig) *testHub {
	cfg.Outputs = []media.Output{hubRooms{svc}}
	hub := media.NewHub(cfg)
	e.stopper.setHub(hub)
	h := &testHub{e: e, hub: hub, pubs: map[string]*media.Publisher{}}
	e.t.Cleanup(func() { hub.StopAll(media.ErrStopped) })
	return h
}

// hubRooms wires a Service to a media hub as cmd/onair's roomStreams does.
type hubRooms struct{ s *Service }

func (h hubRooms) OpenSink(st *media.Stream) (media.Sink, error) {
	start := StreamStart{RoomID: st.Route().RoomID, Name: st.Name(), RunID: st.ID(),
		Codecs: Codecs{Video: string(st.VideoCodec()), Audio: string(st.AudioCodec())}}
	if v := st.Tracks().Video; v != nil {
		start.Resolution = Resolution{Width: v.Width, Height: v.Height}
	}
	h.s.StartBroadcast(start, testStream{st})
	return nil, nil
}

func (h hubRooms) Claim(ctx context.Context, name string, quiet time.Duration) (media.Claim, error) {
	c, err := h.s.Claim(ctx, name, quiet)
	if errors.Is(err, ErrStreamBusy) {
		return nil, fmt.Errorf("%w: %w", media.ErrStreamBusy, err)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

type testStream struct{ *media.Stream }

func (s testStream) Bytes() int64 { return s.Stats().Bytes }

func mediaRoute(r StreamRoute) media.Route {
	return media.Route{Name: r.Name, RoomID: r.RoomID, Record: r.Record}
}

var testTracks = media.Tracks{
	Video: &media.VideoTrack{Codec: media.CodecH264, SPS: []byte{0x67, 0x42}, PPS: []byte{0x68}, Width: 1280, Height: 720},
	Audio: &media.AudioTrack{Codec: media.CodecAAC, SampleRate: 48000, Channels: 2},
}

// goLive publishes with key as an RTMP connection would: resolve, claim, start, send a
// key frame.
func (h *testHub) goLive(key string) (*media.Publisher, *media.Stream) {
	h.e.t.Helper()
	route, err := h.e.svc.ResolveKey(h.e.ctx(), key)
	if err != nil {
		h.e.t.Fatalf("resolve key: %v", err)
	}
	return h.publish(key, route)
}

// publish claims route's stream, starts it and sends a key frame.
func (h *testHub) publish(key string, route StreamRoute) (*media.Publisher, *media.Stream) {
	h.e.t.Helper()
	p, err := h.hub.Publish(context.Background(), mediaRoute(route), "127.0.0.1:50000")
	if err != nil {
		h.e.t.Fatal(err)
	}
	st, err := p.Start(testTracks)
	if err != nil {
		h.e.t.Fatal(err)
	}
	p.Write(&media.AccessUnit{Video: true, Key: true, Payload: [][]byte{make([]byte, 1000)}, Received: time.Now()})
	h.mu.Lock()
	h.pubs[key] = p
	h.mu.Unlock()
	return p, st
}

// end ends the publish of key as a publisher leaving does.
func (h *testHub) end(key string) {
	h.mu.Lock()
	p := h.pubs[key]
	h.mu.Unlock()
	p.Close()
}

// waitLive waits until the room shows live (or offline), at most 1 s: the requirement.
func (e *testEnv) waitLive(slug string, live bool) Room {
	e.t.Helper()
	var r Room
	took := testenv.Eventually(e.t, time.Second, func() (bool, string) {
		var err error
		r, err = e.svc.GetRoom(context.Background(), slug)
		if err != nil {
			return false, err.Error()
		}
		return r.Live == live, fmt.Sprintf("room %s: live is %v, want %v", slug, r.Live, live)
	})
	e.t.Logf("room %s live=%v after %s", slug, live, took.Round(time.Millisecond))
	return r
}

type hookCall struct {
	room Room
	b    Broadcast
}

func TestBroadcastLifecycle(t *testing.T) {
	lives, ends := make(chan hookCall, 10), make(chan hookCall, 10)
	e := newEnv(t, func(c *Config) {
		c.OnLive = func(r Room, b Broadcast) { lives <- hookCall{r, b} }
		c.OnEnded = func(r Room, b Broadcast) { ends <- hookCall{r, b} }
	})
	alice := e.signUp("alice").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")
	h := newTestHub(e)

	p, st := h.goLive(key)
	r := e.waitLive(room.Slug, true)
	if r.BroadcastID == "" || r.LiveSince.IsZero() || r.Viewers != 0 {
		t.Fatalf("live room = %+v", r)
	}
	var live hookCall
	select {
	case live = <-lives:
	case <-time.After(time.Second):
		t.Fatal("OnLive not called")
	}
	if live.room.Slug != room.Slug || !live.room.Live || live.b.ID != r.BroadcastID || live.b.Ended != nil {
		t.Errorf("OnLive(%+v, %+v)", live.room, live.b)
	}

	// Viewer estimates, as this node reports them: reflected here, persisted shortly after,
	// peak and total kept.
	reports := e.reportingNode("node-a")
	for _, n := range []int{3, 5, 2} {
		reports.report(map[string]int{room.Slug: n, "not-live": 7})
		e.waitViewers(room.Slug, n)
	}
	testenv.Eventually(t, 2*time.Second, func() (bool, string) {
		var d roomDoc
		err := e.db.Collection("rooms").FindOne(context.Background(), bson.D{{Key: "slug", Value: room.Slug}}).Decode(&d)
		return err == nil && d.Viewers == 2, "viewer count persisted: not yet"
	})
	if page, err := e.svc.ListRooms(e.ctx(), User{}, RoomQuery{}); err != nil || len(page.Rooms) != 1 || page.Rooms[0].Viewers != 2 {
		t.Errorf("listed: %+v %v", page.Rooms, err)
	}

	for range 9 {
		p.Write(&media.AccessUnit{Video: true, Payload: [][]byte{make([]byte, 1000)}, Received: time.Now()})
	}
	e.clock.Advance(200 * time.Millisecond) // the broadcast lasts at least that long
	p.Close()
	r = e.waitLive(room.Slug, false)
	if r.Viewers != 0 || r.BroadcastID != "" {
		t.Errorf("offline room = %+v", r)
	}
	var ended hookCall
	select {
	case ended = <-ends:
	case <-time.After(time.Second):
		t.Fatal("OnEnded not called")
	}
	if ended.room.Live || ended.b.Ended == nil || ended.b.ID != live.b.ID {
		t.Errorf("OnEnded(%+v, %+v)", ended.room, ended.b)
	}

	b, err := e.svc.GetBroadcast(e.ctx(), live.b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Ended == nil || b.EndReason != "" || b.RoomID != room.ID || b.RoomSlug != room.Slug || b.RunID != st.ID() || b.Node != "node-a" {
		t.Errorf("broadcast = %+v", b)
	}
	if b.Codecs != (Codecs{"h264", "aac"}) || b.Resolution != (Resolution{1280, 720}) {
		t.Errorf("codecs %+v resolution %+v", b.Codecs, b.Resolution)
	}
	if b.Bytes != 10000 || b.PeakViewers != 5 || b.TotalViewers != 5 {
		t.Errorf("bytes %d peak %d total %d, want 10000 5 5", b.Bytes, b.PeakViewers, b.TotalViewers)
	}
	dur := b.Ended.Sub(b.Started)
	if dur < 200*time.Millisecond || b.DurationMS != dur.Milliseconds() {
		t.Errorf("duration %s (%d ms)", dur, b.DurationMS)
	}
	if want := int64(float64(80000) / dur.Seconds()); b.Bitrate < want-want/100 || b.Bitrate > want+want/100 {
		t.Errorf("bitrate %d, want about %d", b.Bitrate, want)
	}
	if fmtTime(ended.b.Started) != fmtTime(b.Started) || ended.b.Bytes != b.Bytes {
		t.Errorf("OnEnded broadcast %+v differs from stored %+v", ended.b, b)
	}
	reports.report(map[string]int{room.Slug: 9}) // after the end: ignored
	if r, _ := e.svc.GetRoom(e.ctx(), room.Slug); r.Viewers != 0 {
		t.Errorf("viewers after end = %d", r.Viewers)
	}

	// Two more broadcasts; the list is newest first and pages.
	for range 2 {
		e.clock.Advance(time.Second)
		h.goLive(key)
		e.waitLive(room.Slug, true)
		h.end(key)
		e.waitLive(room.Slug, false)
	}
	var ids []string
	cursor := ""
	for {
		page, err := e.svc.ListBroadcasts(e.ctx(), room.Slug, BroadcastQuery{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Broadcasts {
			ids = append(ids, b.ID)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(ids) != 3 || ids[2] != live.b.ID {
		t.Fatalf("broadcasts %v: want 3, oldest last", ids)
	}
	all, _ := e.svc.ListBroadcasts(e.ctx(), room.Slug, BroadcastQuery{})
	for i := 1; i < len(all.Broadcasts); i++ {
		if !all.Broadcasts[i-1].Started.After(all.Broadcasts[i].Started) {
			t.Errorf("not newest first: %v", all.Broadcasts)
		}
	}
	if _, err := e.svc.ListBroadcasts(e.ctx(), "no-such-room", BroadcastQuery{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing room: %v", err)
	}
	if _, err := e.svc.GetBroadcast(e.ctx(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing broadcast: %v", err)
	}
	e.assertNotLogged(key)
}

// broadcastOID is the ObjectID behind a broadcast's public id.
func (e *testEnv) broadcastOID(id string) bson.ObjectID {
	e.t.Helper()
	oid, ok := e.svc.pkeys().broadcastOID(id)
	if !ok {
		e.t.Fatalf("%q is not a broadcast id", id)
	}
	return oid
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// TestBroadcastTakeover: OBS reconnecting with the same tracks takes the stream over
// and continues its broadcast; a publisher with other tracks starts a new one, and the
// newer broadcast must hold the room whatever order the writes land in.
func TestBroadcastTakeover(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.signUp("alice").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")
	h := newTestHubWith(e, e.svc, media.HubConfig{TakeoverAfter: time.Nanosecond})

	p1, run := h.goLive(key)
	first := e.waitLive(room.Slug, true)
	p2, again := h.goLive(key) // takes over at once, continuing the run
	<-p1.Done()
	if !errors.Is(p1.Err(), media.ErrTakenOver) || again != run {
		t.Fatalf("first publisher ended with %v; the run went on: %v", p1.Err(), again == run)
	}
	time.Sleep(100 * time.Millisecond)
	if r, err := e.svc.GetRoom(e.ctx(), room.Slug); err != nil || !r.Live || r.BroadcastID != first.BroadcastID {
		t.Fatalf("room after a takeover continuing the run: %+v, %v; want the first broadcast live", r, err)
	}

	// A publisher sending other tracks starts a new run, and a new broadcast.
	route, err := e.svc.ResolveKey(e.ctx(), key)
	if err != nil {
		t.Fatal(err)
	}
	p3, err := h.hub.Publish(context.Background(), mediaRoute(route), "127.0.0.1:50001")
	if err != nil {
		t.Fatal(err)
	}
	other := media.Tracks{Audio: testTracks.Audio}
	if _, err := p3.Start(other); err != nil {
		t.Fatal(err)
	}
	<-p2.Done()
	var r Room
	testenv.Eventually(t, 2*time.Second, func() (bool, string) {
		var err error
		r, err = e.svc.GetRoom(context.Background(), room.Slug)
		return err == nil && r.Live && r.BroadcastID != first.BroadcastID, "second broadcast holds the room: not yet"
	})
	testenv.Eventually(t, 2*time.Second, func() (bool, string) {
		b, err := e.svc.GetBroadcast(context.Background(), first.BroadcastID)
		return err == nil && b.Ended != nil && strings.Contains(b.EndReason, "other tracks"), "first broadcast ended: not yet"
	})
	// The first broadcast's last write, setting the room offline, is done: it either
	// landed before the second's "live" or found the room held by the second.
	firstHex := e.broadcastOID(first.BroadcastID).Hex()
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		for _, line := range strings.Split(e.logs.String(), "\n") {
			if strings.Contains(line, "broadcast_id="+firstHex) &&
				(strings.Contains(line, `msg="room offline"`) || strings.Contains(line, "the room stays with a newer broadcast")) {
				return true, ""
			}
		}
		return false, "the first broadcast has not set the room offline nor left it"
	})
	if r, _ := e.svc.GetRoom(e.ctx(), room.Slug); !r.Live {
		t.Fatal("room offline while the second publisher is live")
	}
	p3.Close()
	e.waitLive(room.Slug, false)
}

// TestBroadcastSurvivesMongoRestart: while MongoDB is down, one publisher leaves and
// another (whose key was resolved before, as OBS reconnecting) starts without the media
// pipeline waiting; once MongoDB is back both broadcasts end up right.
func TestBroadcastSurvivesMongoRestart(t *testing.T) {
	ends := make(chan Broadcast, 4)
	e := newEnv(t, func(c *Config) { c.OnEnded = func(_ Room, b Broadcast) { ends <- b } })
	alice := e.signUp("alice").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")
	room2, key2 := e.createRoom(alice, "alice-second", "Alice again")
	if _, err := e.svc.ResolveKey(e.ctx(), key2); err != nil {
		t.Fatal(err)
	}
	h := newTestHub(e)
	p, _ := h.goLive(key)
	live := e.waitLive(room.Slug, true)
	e.reportingNode("node-a").report(map[string]int{room.Slug: 4})
	e.waitViewers(room.Slug, 4)

	ends0, inserts0 := e.logs.count("broadcast: end: will retry"), e.logs.count("broadcast: insert: will retry")
	e.mongo.Kill()
	closedAt := e.clock.Now()
	p.Close()
	route2, err := e.svc.ResolveKey(e.ctx(), key2) // from the cache, after OpTimeout
	if err != nil {
		t.Fatalf("resolve during the outage: %v", err)
	}
	start := time.Now()
	p2, _ := h.publish(key2, route2) // OpenSink must not wait for MongoDB
	// Waiting for MongoDB would take the OpTimeout (1 s).
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("publishing took %s while MongoDB was down", took)
	}
	// Both broadcasts' writers have met the outage before MongoDB comes back.
	e.waitLogged("broadcast: end: will retry", ends0)
	e.waitLogged("broadcast: insert: will retry", inserts0)
	e.mongo.Restart(t)

	var b Broadcast
	select {
	case b = <-ends:
	case <-time.After(10 * time.Second):
		t.Fatal("broadcast not ended after MongoDB came back")
	}
	if b.ID != live.BroadcastID || b.Ended == nil {
		t.Fatalf("ended %+v", b)
	}
	stored, err := e.svc.GetBroadcast(e.ctx(), b.ID)
	if err != nil || stored.Ended == nil || stored.PeakViewers != 4 || stored.Bytes != 1000 {
		t.Fatalf("stored broadcast %+v, %v", stored, err)
	}
	// It ended when the publisher left, not when MongoDB came back.
	if stored.Ended.After(closedAt.Add(300 * time.Millisecond)) {
		t.Errorf("ended %s after the publisher left", stored.Ended.Sub(closedAt))
	}
	if r, err := e.svc.GetRoom(e.ctx(), room.Slug); err != nil || r.Live {
		t.Fatalf("room after restart: %+v %v", r, err)
	}

	// The broadcast that started during the outage shows live, then ends normally.
	e.waitLive(room2.Slug, true)
	p2.Close()
	e.waitLive(room2.Slug, false)
	page, err := e.svc.ListBroadcasts(e.ctx(), room2.Slug, BroadcastQuery{})
	if err != nil || len(page.Broadcasts) != 1 || page.Broadcasts[0].Ended == nil {
		t.Fatalf("second room's broadcasts %+v %v", page.Broadcasts, err)
	}

	// A broadcast that starts and ends within an outage is recorded with its own times.
	inserts0 = e.logs.count("broadcast: insert: will retry")
	e.mongo.Kill()
	route2, err = e.svc.ResolveKey(e.ctx(), key2)
	if err != nil {
		t.Fatal(err)
	}
	p3, _ := h.publish(key2, route2)
	e.waitLogged("broadcast: insert: will retry", inserts0) // its insert met the outage
	closedAt = e.clock.Now()
	p3.Close()
	// The end is noted when the publisher leaves, while the insert is still retrying.
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		return e.svc.live.count() == 0, fmt.Sprintf("%d live broadcasts", e.svc.live.count())
	})
	e.mongo.Restart(t)
	for range 2 {
		select {
		case b = <-ends:
		case <-time.After(10 * time.Second):
			t.Fatal("short broadcast not recorded after MongoDB came back")
		}
	}
	stored, err = e.svc.GetBroadcast(e.ctx(), b.ID)
	if err != nil || stored.Ended == nil || stored.RoomSlug != room2.Slug {
		t.Fatalf("short broadcast %+v %v", stored, err)
	}
	if d := stored.Ended.Sub(closedAt); d < -50*time.Millisecond || d > 300*time.Millisecond {
		t.Errorf("short broadcast ended %s from when its publisher left", d)
	}
	if r, _ := e.svc.GetRoom(e.ctx(), room2.Slug); r.Live {
		t.Error("room live after a broadcast ended during the outage")
	}
}

// TestEndStaleBroadcasts: a node that crashed leaves a broadcast open; another node ends
// it once the crashed node's heartbeat is StaleAfter old, and only one of the nodes that
// find it sets the room offline and announces the end.
func TestEndStaleBroadcasts(t *testing.T) {
	ends := make(chan hookCall, 4)
	onEnded := func(r Room, b Broadcast) { ends <- hookCall{r, b} }
	e := newEnv(t, func(c *Config) {
		c.HeartbeatInterval = time.Hour // only the crash matters here
		c.OnEnded = onEnded
	})
	alice := e.signUp("alice").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")
	third, err := New(Config{DB: e.db, Now: e.clock.Now, Cluster: e.node("node-c", ""), Password: cheapPassword,
		Logger: e.svc.log, OnEnded: onEnded})
	if err != nil {
		t.Fatal(err)
	}

	// Node B publishes, then crashes (its writers stop without ending anything).
	crashed := e.node("node-b", "")
	nodeB, err := New(Config{DB: e.db, Now: e.clock.Now, Cluster: crashed, Password: cheapPassword, Logger: e.svc.log})
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHubWith(e, nodeB, media.HubConfig{Claims: hubRooms{nodeB}})
	h.goLive(key)
	live := e.waitLive(room.Slug, true)
	nodeB.bgCancel()
	nodeB.writers.Wait()

	if n, err := e.svc.EndStaleBroadcasts(e.ctx()); err != nil || n != 0 {
		t.Fatalf("fresh broadcast ended: %d %v", n, err)
	}
	e.clock.Advance(12 * time.Second)
	for _, r := range []*cluster.Registry{e.svc.cfg.Cluster, third.cfg.Cluster} {
		if err := r.Beat(e.ctx()); err != nil {
			t.Fatal(err)
		}
	}
	// Two nodes find the lost broadcast at once: one ends it and speaks for the room.
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, svc := range []*Service{e.svc, third} {
		wg.Go(func() {
			n, err := svc.EndStaleBroadcasts(e.ctx())
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	if counts[0]+counts[1] < 1 {
		t.Fatalf("ended %v; want the broadcast ended", counts)
	}
	if r, _ := e.svc.GetRoom(e.ctx(), room.Slug); r.Live {
		t.Error("room still live")
	}
	b, err := e.svc.GetBroadcast(e.ctx(), live.BroadcastID)
	if err != nil || b.Ended == nil || b.EndReason != "node stopped reporting" || b.Node != "node-b" {
		t.Errorf("broadcast %+v %v", b, err)
	}
	select {
	case c := <-ends:
		if c.b.ID != live.BroadcastID || c.room.Live {
			t.Errorf("OnEnded %+v", c)
		}
	default:
		t.Error("OnEnded not called")
	}
	select {
	case c := <-ends:
		t.Errorf("OnEnded called twice: %+v", c.b)
	default:
	}
	if n, _ := e.svc.EndStaleBroadcasts(e.ctx()); n != 0 {
		t.Errorf("ended again: %d", n)
	}

	// Node C publishes and crashes; when it starts again (same node id) it ends its own
	// leftovers at once rather than after StaleAfter.
	nodeC, err := New(Config{DB: e.db, Now: e.clock.Now, Cluster: e.node("node-d", ""), Password: cheapPassword, Logger: e.svc.log})
	if err != nil {
		t.Fatal(err)
	}
	newTestHubWith(e, nodeC, media.HubConfig{Claims: hubRooms{nodeC}}).goLive(key)
	live = e.waitLive(room.Slug, true)
	nodeC.bgCancel()
	nodeC.writers.Wait()
	restarted, err := New(Config{DB: e.db, Now: e.clock.Now, Cluster: e.node("node-d", ""), Password: cheapPassword, Logger: e.svc.log,
		OnEnded: onEnded})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = restarted.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	e.waitLive(room.Slug, false)
	if b, err := e.svc.GetBroadcast(e.ctx(), live.BroadcastID); err != nil || b.EndReason != "node restarted" {
		t.Errorf("broadcast %+v %v", b, err)
	}
	select {
	case c := <-ends:
		if c.b.ID != live.BroadcastID || c.b.EndReason != "node restarted" {
			t.Errorf("OnEnded %+v", c.b)
		}
	case <-time.After(time.Second):
		t.Error("OnEnded not called for the orphan")
	}
}

// TestStreamOwnedAcrossNodes: while a publisher on node A holds a stream, node B refuses
// one; once A's publisher has been quiet for the takeover delay, B takes the stream over,
// A's publisher is ended, and A's broadcast neither sets the room offline nor announces an
// end: exactly one broadcast is live.
func TestStreamOwnedAcrossNodes(t *testing.T) {
	ends := make(chan hookCall, 4)
	e := newEnv(t, func(c *Config) { c.OnEnded = func(r Room, b Broadcast) { ends <- hookCall{r, b} } })
	alice := e.signUp("alice").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")
	regB := e.node("node-b", "")
	nodeB, err := New(Config{DB: e.db, Now: e.clock.Now, Cluster: regB, Password: cheapPassword, Logger: e.svc.log,
		OnEnded: func(r Room, b Broadcast) { ends <- hookCall{r, b} }})
	if err != nil {
		t.Fatal(err)
	}
	const quiet = 5 * time.Second
	hubA := newTestHubWith(e, e.svc, media.HubConfig{Claims: hubRooms{e.svc}, TakeoverAfter: quiet})
	hubB := newTestHubWith(e, nodeB, media.HubConfig{Claims: hubRooms{nodeB}, TakeoverAfter: quiet})
	pubA, _ := hubA.goLive(key)
	first := e.waitLive(room.Slug, true)

	route, err := nodeB.ResolveKey(e.ctx(), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hubB.hub.Publish(e.ctx(), mediaRoute(route), "b"); !errors.Is(err, media.ErrStreamBusy) {
		t.Fatalf("second publisher on node B: %v, want ErrStreamBusy", err)
	}
	// A's publisher goes quiet (the clock moves; A reports its last data time).
	e.svc.cfg.Cluster.Beat(e.ctx())
	e.clock.Advance(quiet)
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.svc.cfg.Cluster.Run(runCtx) }()
	p, _ := hubB.publish(key, route)
	defer p.Close()
	select {
	case <-pubA.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("node A's publisher not ended after node B took the stream over")
	}
	if !errors.Is(pubA.Err(), media.ErrTakenOver) {
		t.Fatalf("A's publisher ended with %v", pubA.Err())
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		r, err := e.svc.GetRoom(e.ctx(), room.Slug)
		return err == nil && r.Live && r.BroadcastID != first.BroadcastID, fmt.Sprintf("B's broadcast holds the room: %+v %v", r, err)
	})
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		b, err := e.svc.GetBroadcast(e.ctx(), first.BroadcastID)
		return err == nil && b.Ended != nil, fmt.Sprintf("A's broadcast ended: %+v %v", b, err)
	})
	open, err := e.db.Collection("broadcasts").CountDocuments(e.ctx(), bson.D{{Key: "ended", Value: nil}})
	if err != nil || open != 1 {
		t.Fatalf("%d open broadcasts, want 1 (%v)", open, err)
	}
	select {
	case c := <-ends:
		t.Fatalf("an end was announced while node B is live: %+v", c.b)
	default:
	}
}

// TestRoomChangesReachTheLiveNode: rotating a room's key or deleting the room on another
// node (the owner's request went there) stops the publish on the node it runs on, within
// a heartbeat, for the reason given.
func TestRoomChangesReachTheLiveNode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(e *testEnv, other *Service, owner User, slug string) error
		reason error
	}{
		{"key rotated", func(e *testEnv, other *Service, owner User, slug string) error {
			_, err := other.RotateKey(e.ctx(), owner, slug)
			return err
		}, errKeyRotated},
		{"room deleted", func(e *testEnv, other *Service, owner User, slug string) error {
			return other.DeleteRoom(e.ctx(), owner, slug)
		}, errRoomDeleted},
		{"owner disabled", func(e *testEnv, other *Service, owner User, slug string) error {
			// The owner is the first account, an admin; another admin disables them.
			root := e.signUp("root").User
			yes := true
			if _, err := other.UpdateUser(e.ctx(), owner, "root", UserUpdate{Admin: &yes}); err != nil {
				return err
			}
			root.Admin = true
			_, err := other.UpdateUser(e.ctx(), root, owner.Handle, UserUpdate{Disabled: &yes})
			return err
		}, errOwnerDisabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.HeartbeatInterval = 50 * time.Millisecond })
			alice := e.signUp("alice").User
			room, key := e.createRoom(alice, "alice-live", "Alice live")
			other, err := New(Config{DB: e.db, Cluster: e.node("node-b", ""), Now: e.clock.Now, Password: cheapPassword, OpTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, st := newTestHub(e).goLive(key)
			e.waitLive(room.Slug, true)
			if err := tc.change(e, other, alice, room.Slug); err != nil {
				t.Fatal(err)
			}
			select {
			case <-st.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the live stream was not stopped on its node")
			}
			if !errors.Is(st.Err(), tc.reason) {
				t.Fatalf("stream ended with %v, want %v", st.Err(), tc.reason)
			}
		})
	}
}
