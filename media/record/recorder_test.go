package record

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"onair/media"
	"onair/media/fmp4"
	"onair/media/hls"
	"onair/storage"
	"onair/storage/local"
)

// collected gathers what Recorded is told.
type collected struct {
	mu   sync.Mutex
	recs []Recording
	got  chan struct{}
}

func newCollected() *collected { return &collected{got: make(chan struct{}, 16)} }

func (c *collected) recorded(_ context.Context, rec Recording) error {
	c.mu.Lock()
	c.recs = append(c.recs, rec)
	c.mu.Unlock()
	c.got <- struct{}{}
	return nil
}

func (c *collected) wait(t *testing.T) Recording {
	t.Helper()
	select {
	case <-c.got:
	case <-time.After(20 * time.Second):
		t.Fatal("no recording registered within 20 s")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recs[len(c.recs)-1]
}

func newStore(t *testing.T) storage.Store {
	t.Helper()
	s, err := local.New(local.Config{Root: t.TempDir(), Secret: bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testTracks = media.Tracks{
	Video: &media.VideoTrack{Codec: media.CodecH264, Width: 320, Height: 240,
		SPS: []byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60},
		PPS: []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}},
	Audio: &media.AudioTrack{Codec: media.CodecAAC, SampleRate: 48000, Channels: 2,
		AAC: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 2}},
}

// node is one onair process of a test: HLS writing the runs' logs into dir, the recorder
// keeping them.
type node struct {
	t   *testing.T
	dir string
	rec *Recorder
	hls *hls.Server
	out *collected
	hub *media.Hub
	// failed gets what the recorder's Failed is told.
	failed chan failure
}

type failure struct {
	rec     Recording
	err     error
	partial bool
}

// chunkSize is what the tests cut logs into: S3's smallest part.
const chunkSize = storage.MinPartSize

func startNode(t *testing.T, dir string, store storage.Store, ledger Ledger, maxDisk int64) *node {
	t.Helper()
	return startNodeGrace(t, dir, store, ledger, maxDisk, 100*time.Millisecond)
}

// startNodeGrace starts a node whose HLS keeps an ended run's log for endGrace.
func startNodeGrace(t *testing.T, dir string, store storage.Store, ledger Ledger, maxDisk int64, endGrace time.Duration) *node {
	t.Helper()
	n := &node{t: t, dir: dir, out: newCollected(), failed: make(chan failure, 16)}
	var err error
	n.rec, err = New(Config{Store: store, Dir: dir, Recorded: n.out.recorded, Ledger: ledger, MaxDisk: maxDisk,
		Retry:  storage.Retrier{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		Failed: func(rec Recording, err error, partial bool) { n.failed <- failure{rec, err, partial} }})
	if err != nil {
		t.Fatal(err)
	}
	n.hls, err = hls.New(hls.Config{Dir: dir, ChunkSize: chunkSize, Archive: n.rec, DVRWindow: 5 * time.Second, EndGrace: endGrace})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go n.hls.Run(ctx)
	n.hub = media.NewHub(media.HubConfig{Outputs: []media.Output{n.hls}, SinkQueue: 100_000})
	return n
}

// publisher sends frames of frameBytes at 30 fps, a key frame a second, and AAC audio.
type publisher struct {
	p          *media.Publisher
	st         *media.Stream
	frame, aac int
	frameBytes int
}

func (n *node) publish(frameBytes int) *publisher {
	n.t.Helper()
	p, err := n.hub.Publish(context.Background(), media.Route{Name: "cam", RoomID: "room1", Record: true}, "test")
	if err != nil {
		n.t.Fatal(err)
	}
	st, err := p.Start(testTracks)
	if err != nil {
		n.t.Fatal(err)
	}
	return &publisher{p: p, st: st, frameBytes: frameBytes}
}

// send sends d of media.
func (p *publisher) send(d time.Duration) {
	end := time.Duration(p.frame)*time.Second/30 + d
	for {
		vt := time.Duration(p.frame) * time.Second / 30
		at := time.Duration(p.aac) * 1024 * time.Second / 48000
		if min(vt, at) >= end {
			return
		}
		if vt <= at {
			b := bytes.Repeat([]byte{byte(p.frame)}, p.frameBytes)
			p.p.Write(&media.AccessUnit{Video: true, Key: p.frame%30 == 0, DTS: vt.Truncate(time.Millisecond),
				PTS: vt.Truncate(time.Millisecond), Payload: [][]byte{b}, Received: time.Now()})
			p.frame++
		} else {
			p.p.Write(&media.AccessUnit{Key: true, DTS: at.Truncate(time.Millisecond), PTS: at.Truncate(time.Millisecond),
				Payload: [][]byte{bytes.Repeat([]byte{0xaa}, 200)}, Received: time.Now()})
			p.aac++
		}
	}
}

// checkRecording reads the recording back: its init segment, then every segment as the
// index says, each fMP4 fragments of the video (and audio) of its time.
func checkRecording(t *testing.T, store storage.Store, rec Recording) {
	t.Helper()
	rc, obj, err := store.Get(context.Background(), rec.Key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != rec.Size || int64(len(b)) != rec.Size {
		t.Fatalf("object has %d bytes, the recording says %d", len(b), rec.Size)
	}
	var init mcfmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b[:rec.InitSize])); err != nil || len(init.Tracks) != 2 {
		t.Fatalf("init: %v", err)
	}
	at := rec.InitSize
	frames := 0
	for i, s := range rec.Segments {
		if s.Offset != at {
			t.Fatalf("segment %d at %d, want %d: the segments are not end to end", i, s.Offset, at)
		}
		var parts mcfmp4.Parts
		if err := parts.Unmarshal(b[s.Offset : s.Offset+s.Size]); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		for _, p := range parts {
			if p.Tracks[0].ID == 1 {
				frames += len(p.Tracks[0].Samples)
			}
		}
		at += s.Size
	}
	if at != rec.Size {
		t.Fatalf("the segments end at %d, the object at %d", at, rec.Size)
	}
	if got := time.Duration(frames) * time.Second / 30; got < rec.Duration-100*time.Millisecond || got > rec.Duration+100*time.Millisecond {
		t.Fatalf("%d frames in a recording of %s", frames, rec.Duration)
	}
}

func TestRecordsARunFromItsLog(t *testing.T) {
	store := newStore(t)
	db := newLedgerDB()
	n := startNode(t, t.TempDir(), store, db.node("a"), 0)
	pub := n.publish(30_000) // 7.2 Mbit/s: a 5 MiB chunk every six seconds
	pub.send(15 * time.Second)
	pub.p.Close()
	rec := n.out.wait(t)
	if rec.Key != "recordings/room1/"+pub.st.ID()+"/recording.mp4" || rec.Recovered || len(rec.Segments) < 14 {
		t.Fatalf("recording = %+v", rec.fixed())
	}
	if rec.Duration < 14*time.Second || rec.Duration > 15*time.Second {
		t.Fatalf("recording lasts %s for 15 s sent", rec.Duration)
	}
	checkRecording(t, store, rec)
	// Only the recording is left: no ledger entry, no log, no chunk, no upload.
	waitFor(t, "the recording's ledger entry and log gone", func() bool { return db.empty() && dirEntries(t, n.dir) == 0 })
	var left []string
	_ = store.List(context.Background(), storage.RecordingsPrefix, func(o storage.Object) error { left = append(left, o.Key); return nil })
	if len(left) != 1 || left[0] != rec.Key {
		t.Fatalf("objects left: %v", left)
	}
	if ups, _ := store.ListUploads(context.Background(), storage.RecordingsPrefix); len(ups) != 0 {
		t.Fatalf("uploads left: %v", ups)
	}
}

// A complete recording whose log still serves the last viewers of the run is no crash's
// leftover: a later pass over the disk must not complete it again (and so bring back a
// recording its owner deleted meanwhile).
func TestCompleteRecordingIsNotRecoveredAgain(t *testing.T) {
	store := newStore(t)
	db := newLedgerDB()
	n := startNodeGrace(t, t.TempDir(), store, db.node("a"), 0, time.Hour)
	pub := n.publish(30_000)
	pub.send(3 * time.Second)
	pub.p.Close()
	rec := n.out.wait(t)
	waitFor(t, "the recording's ledger entry gone", db.empty)
	if dirEntries(t, n.dir) != 1 {
		t.Fatal("the run's log went before its grace period")
	}
	if err := store.Delete(context.Background(), rec.Key); err != nil { // its owner deletes it
		t.Fatal(err)
	}
	if err := n.rec.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.rec.active.Wait()
	n.out.mu.Lock()
	got := len(n.out.recs)
	n.out.mu.Unlock()
	if got != 1 {
		t.Fatalf("the recording was registered %d times", got)
	}
	if _, err := store.Head(context.Background(), rec.Key); err == nil {
		t.Fatal("the deleted recording is back in the store")
	}
}

func dirEntries(t *testing.T, dir string) int {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"))
	return len(m)
}

// A crash leaves the run's log on disk; the next start completes the recording from it
// and from the chunks that reached the store.
func TestRecoverAfterCrash(t *testing.T) {
	store := newStore(t)
	db := newLedgerDB()
	dir := t.TempDir()
	n := startNode(t, dir, store, db.node("a"), 0)
	pub := n.publish(30_000)
	pub.send(10 * time.Second)
	waitFor(t, "a chunk in the ledger", func() bool { return len(db.chunks(storageKey(pub))) > 0 })
	// The process dies: nothing more is written or uploaded.
	n.rec.cancel()

	again := startNode(t, dir, store, db.node("a"), 0)
	if dirEntries(t, dir) != 1 {
		t.Fatal("HLS removed the recording's log at start")
	}
	if err := again.rec.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := again.out.wait(t)
	if !rec.Recovered || rec.Duration < 8*time.Second {
		t.Fatalf("recovered recording = %+v", rec.fixed())
	}
	checkRecording(t, store, rec)
}

func storageKey(p *publisher) string { return "recordings/room1/" + p.st.ID() + "/recording.mp4" }

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A node lost with its disk: another completes its recording from the chunks in the
// store, once the ledger says the owner is dead.
func TestAdoptRecordingOfALostNode(t *testing.T) {
	store := newStore(t)
	db := newLedgerDB()
	a := startNode(t, t.TempDir(), store, db.node("a"), 0)
	pub := a.publish(30_000)
	pub.send(14 * time.Second)
	waitFor(t, "two chunks in the ledger", func() bool { return len(db.chunks(storageKey(pub))) >= 2 })
	a.rec.cancel() // lost, disk and all
	chunks := db.chunks(storageKey(pub))

	b := startNode(t, t.TempDir(), store, db.node("b"), 0)
	b.rec.adopt(context.Background())
	select {
	case <-b.out.got:
		t.Fatal("adopted a live node's recording")
	case <-time.After(100 * time.Millisecond):
	}
	db.setDead("a", true)
	b.rec.adopt(context.Background())
	rec := b.out.wait(t)
	last := chunks[len(chunks)-1]
	if !rec.Recovered || rec.Size != last.Start+last.Size {
		t.Fatalf("adopted recording = %+v, want it to end with chunk %d at %d", rec.fixed(), last.N, last.Start+last.Size)
	}
	checkRecording(t, store, rec)
	waitFor(t, "the adopted recording gone from the ledger", db.empty)
}

// failingStore is a store that is away while down is set.
type failingStore struct {
	storage.Store
	mu   sync.Mutex
	down bool
}

func (f *failingStore) set(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *failingStore) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, ct string) error {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return storage.ErrUnavailable
	}
	return f.Store.Put(ctx, key, body, size, ct)
}

// While the store is away the log waits on disk, up to MaxDisk; past it the recording
// stops growing, the log lets the rest go, and what was kept is completed once the store
// is back.
func TestStoreAwayPastMaxDisk(t *testing.T) {
	store := &failingStore{Store: newStore(t)}
	store.set(true)
	db := newLedgerDB()
	n := startNode(t, t.TempDir(), store, db.node("a"), 3*chunkSize)
	pub := n.publish(30_000)
	pub.send(40 * time.Second) // six chunks and more
	waitFor(t, "a full backlog", func() bool {
		n.rec.mu.Lock()
		defer n.rec.mu.Unlock()
		for k := range n.rec.runs {
			k.mu.Lock()
			full := k.full
			k.mu.Unlock()
			return full
		}
		return false
	})
	if b := n.rec.Backlog(); b.PartsPending != 2 || b.BytesPending < 2*chunkSize {
		t.Fatalf("backlog %+v, want the two chunks that fit", b)
	}
	if f := <-n.failed; !f.partial || f.err == nil || f.rec.Key != storageKey(pub) {
		t.Fatalf("failure = %+v, want the recording's, partial", f)
	}
	chunksOnDisk := func() int {
		m, _ := filepath.Glob(filepath.Join(n.dir, "*", "chunk-*"))
		return len(m)
	}
	if c := chunksOnDisk(); c > 2+int(20*time.Second/(6*time.Second))+2 {
		t.Fatalf("%d chunks on disk: the log keeps what the recording gave up", c)
	}
	store.set(false)
	pub.p.Close()
	rec := n.out.wait(t)
	if rec.Duration < 10*time.Second || rec.Duration > 14*time.Second {
		t.Fatalf("the recording kept %s, want the two chunks that fit on disk", rec.Duration)
	}
	checkRecording(t, store, rec)
}

// A stream that asks to be recorded and cannot be (here: its run is being recorded
// already) is reported through Failed, so that its owner hears of it.
func TestRecorderReportsARecordingThatCannotStart(t *testing.T) {
	n := startNode(t, t.TempDir(), newStore(t), newLedgerDB().node("a"), 0)
	pub := n.publish(1000)
	pub.send(2 * time.Second)
	log, err := fmp4.CreateLog(fmp4.LogConfig{Dir: filepath.Join(t.TempDir(), "run"), ChunkSize: chunkSize, Init: []byte("init")})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Abandon()
	if _, err := n.rec.Keep(pub.st, log); err == nil {
		t.Fatal("the same run was recorded twice")
	}
	select {
	case f := <-n.failed:
		if f.partial || f.err == nil || f.rec.StreamID != pub.st.ID() || f.rec.RoomID != "room1" {
			t.Fatalf("failure = %+v", f)
		}
	case <-time.After(time.Second):
		t.Fatal("Failed was not called")
	}
	pub.p.Close()
	n.out.wait(t)
}
