package record

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"onair/media"
	"onair/scripts/testenv"
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
	case <-time.After(10 * time.Second):
		t.Fatal("no recording registered within 10 s")
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

func startStream(t *testing.T, r *Recorder, tracks media.Tracks) (*media.Publisher, *media.Hub) {
	t.Helper()
	hub := media.NewHub(media.HubConfig{Outputs: []media.Output{r}})
	p, err := hub.Publish(context.Background(), media.Route{Name: "cam", Owner: "room1", Record: true}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Start(tracks); err != nil {
		t.Fatal(err)
	}
	return p, hub
}

// checkObject verifies that the stored object parses fragment by fragment as indexed.
func checkObject(t *testing.T, store storage.Store, rec Recording) {
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
		t.Fatalf("object is %d bytes (%d read), recording says %d", obj.Size, len(b), rec.Size)
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b[:rec.InitSize])); err != nil {
		t.Fatalf("init: %v", err)
	}
	for i, f := range rec.Fragments {
		var parts fmp4.Parts
		if err := parts.Unmarshal(b[f.Offset : f.Offset+f.Size]); err != nil {
			t.Fatalf("fragment %d at %d: %v", i, f.Offset, err)
		}
	}
}

func TestRecorderRecordsAStream(t *testing.T) {
	store := newStore(t)
	got := newCollected()
	ledger := newLedgerDB()
	r, err := New(Config{Store: store, Dir: t.TempDir(), MinFragment: 60 * time.Millisecond, Recorded: got.recorded, Ledger: ledger.node("a")})
	if err != nil {
		t.Fatal(err)
	}
	tracks, aus := fixtureUnits(t)
	p, _ := startStream(t, r, tracks)
	for _, au := range aus {
		p.Write(au)
	}
	p.Close()
	rec := got.wait(t)
	if rec.Recovered || rec.StreamName != "cam" || rec.Owner != "room1" || rec.VideoCodec != "h264" || rec.AudioCodec != "aac" {
		t.Fatalf("recording = %+v", rec)
	}
	if rec.Key != "recordings/room1/"+rec.StreamID+"/recording.mp4" {
		t.Fatalf("key = %s", rec.Key)
	}
	if len(rec.Fragments) < 2 || rec.Duration < 150*time.Millisecond {
		t.Fatalf("%d fragments, %s", len(rec.Fragments), rec.Duration)
	}
	checkObject(t, store, rec)
	testenv.Eventually(t, 10*time.Second, func() (bool, string) { return ledger.empty(), "the ledger still has the recording" })
}

func TestRecorderSkipsStreamsNotAskingForIt(t *testing.T) {
	r, err := New(Config{Store: newStore(t), Dir: t.TempDir(), Recorded: newCollected().recorded, Ledger: newLedgerDB().node("a")})
	if err != nil {
		t.Fatal(err)
	}
	hub := media.NewHub(media.HubConfig{})
	p, err := hub.Publish(context.Background(), media.Route{Name: "cam"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Start(media.Tracks{Audio: &media.AudioTrack{Codec: media.CodecAAC}})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := r.OpenSink(s); out != nil || err != nil {
		t.Fatalf("OpenSink for an unrecorded stream = %v, %v", out, err)
	}
}

// A crash (the process dies mid-stream) leaves the spool and index on disk; the next
// start completes the recording at its last complete fragment.
func TestRecoverAfterCrash(t *testing.T) {
	store, dir := newStore(t), t.TempDir()
	ledger := newLedgerDB()
	r, err := New(Config{Store: store, Dir: dir, MinFragment: 60 * time.Millisecond, Recorded: newCollected().recorded, Ledger: ledger.node("a")})
	if err != nil {
		t.Fatal(err)
	}
	tracks, aus := fixtureUnits(t)
	hub := media.NewHub(media.HubConfig{SinkQueue: 1024})
	p, err := hub.Publish(context.Background(), media.Route{Name: "cam", Owner: "room1", Record: true}, "test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Start(tracks)
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.OpenSink(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, au := range aus {
		if err := out.WriteAccessUnit(au); err != nil {
			t.Fatal(err)
		}
	}
	k := out.(*sink)
	written := append([]Fragment(nil), k.rec.Fragments...)
	if len(written) == 0 {
		t.Fatal("no fragment written before the crash")
	}
	r.cancel() // the process dies: spools freeze, nothing is closed

	again := newCollected()
	r2, err := New(Config{Store: store, Dir: dir, Recorded: again.recorded, Ledger: ledger.node("a")})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := again.wait(t)
	if !rec.Recovered || len(rec.Fragments) != len(written) {
		t.Fatalf("recovered %d fragments (recovered=%v), %d were complete", len(rec.Fragments), rec.Recovered, len(written))
	}
	last := written[len(written)-1]
	if rec.Duration != last.Start+last.Duration || !rec.EndedAt.Equal(rec.StartedAt.Add(rec.Duration)) {
		t.Fatalf("recovered duration %s ends %s, want %s", rec.Duration, rec.EndedAt, last.Start+last.Duration)
	}
	checkObject(t, store, rec)
	// A second start has nothing left to do.
	r2.active.Wait()
	if !ledger.empty() {
		t.Fatal("the ledger still has the recovered recording")
	}
	if err := r2.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-again.got:
		t.Fatal("a recovered recording was registered twice")
	default:
	}
}

// A stream that asks to be recorded and cannot be (here: its run is being recorded
// already) is reported through Failed, so that its owner hears of it.
func TestRecorderReportsARecordingThatCannotStart(t *testing.T) {
	type failure struct {
		rec     Recording
		err     error
		partial bool
	}
	failed := make(chan failure, 2)
	r, err := New(Config{Store: newStore(t), Dir: t.TempDir(), Recorded: newCollected().recorded, Ledger: newLedgerDB().node("a"),
		Failed: func(rec Recording, err error, partial bool) { failed <- failure{rec, err, partial} }})
	if err != nil {
		t.Fatal(err)
	}
	tracks, _ := fixtureUnits(t)
	hub := media.NewHub(media.HubConfig{})
	p, err := hub.Publish(context.Background(), media.Route{Name: "cam", Owner: "room1", Record: true}, "test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Start(tracks)
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.OpenSink(s)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close(nil)
	if _, err := r.OpenSink(s); err == nil {
		t.Fatal("the same run was recorded twice")
	}
	select {
	case f := <-failed:
		if f.partial || f.err == nil || f.rec.StreamID != s.ID() || f.rec.Owner != "room1" {
			t.Fatalf("failure = %+v", f)
		}
	case <-time.After(time.Second):
		t.Fatal("Failed was not called")
	}
}
