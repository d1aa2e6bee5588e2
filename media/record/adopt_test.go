package record

import (
	"context"
	"os"
	"testing"
	"time"

	"onair/media"
	"onair/scripts/testenv"
	"onair/storage"
)

// bigAudio records an audio-only stream of large frames, so that whole parts (of the
// smallest size the store accepts) reach the store within a few seconds of media.
type bigAudio struct {
	t   *testing.T
	out media.Sink
	dts time.Duration
}

func startBigAudio(t *testing.T, r *Recorder) *bigAudio {
	t.Helper()
	tracks, _ := fixtureUnits(t)
	hub := media.NewHub(media.HubConfig{SinkQueue: 1 << 16})
	p, err := hub.Publish(context.Background(), media.Route{Name: "cam", Owner: "room1", Record: true}, "test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Start(media.Tracks{Audio: tracks.Audio})
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.OpenSink(st)
	if err != nil || out == nil {
		t.Fatalf("OpenSink = %v, %v", out, err)
	}
	return &bigAudio{t: t, out: out}
}

// write records n bytes of frames of 32 KiB.
func (b *bigAudio) write(n int) {
	b.t.Helper()
	frame := make([]byte, 32<<10)
	for range n / len(frame) {
		au := &media.AccessUnit{DTS: b.dts, PTS: b.dts, Key: true, Payload: [][]byte{frame}}
		if err := b.out.WriteAccessUnit(au); err != nil {
			b.t.Fatal(err)
		}
		b.dts += 1024 * time.Second / 48000
	}
}

func (b *bigAudio) key() string { return b.out.(*sink).rec.Key }

// A node lost with its disk mid-recording: what reached the store, with the index the
// ledger holds, becomes a recording, adopted by another node once the owner is dead, or
// at once by the owner itself when it comes back under its id without its disk.
func TestAdoptRecordingOfALostNode(t *testing.T) {
	for _, c := range []struct {
		name    string
		adopter string
		dead    bool
	}{
		{"another node adopts it once its owner is dead", "b", true},
		{"the owner back under its id without its disk adopts its own", "a", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			store, ledger := newStore(t), newLedgerDB()
			dirA := t.TempDir()
			a, err := New(Config{Store: store, Dir: dirA, MinFragment: 100 * time.Millisecond, PartSize: storage.MinPartSize,
				Recorded: newCollected().recorded, Ledger: ledger.node("a")})
			if err != nil {
				t.Fatal(err)
			}
			rec := startBigAudio(t, a)
			rec.write(2*storage.MinPartSize + 1<<20)
			key := rec.key()
			testenv.Eventually(t, 20*time.Second, func() (bool, string) {
				f := ledger.fragments(key)
				return len(f) > 0 && f[len(f)-1].Offset+f[len(f)-1].Size > storage.MinPartSize, "the ledger does not index two parts yet"
			})
			indexed := ledger.fragments(key)
			// The node dies with its disk.
			a.cancel()
			if err := os.RemoveAll(dirA); err != nil {
				t.Fatal(err)
			}

			// A live node's recordings are not adopted.
			got := newCollected()
			adopter, err := New(Config{Store: store, Dir: t.TempDir(), Recorded: got.recorded, Ledger: ledger.node(c.adopter)})
			if err != nil {
				t.Fatal(err)
			}
			if c.adopter != "a" {
				adopter.adopt(context.Background())
				adopter.active.Wait()
				if !ledger.known(key) {
					t.Fatal("a live node's recording was adopted")
				}
			}
			ledger.setDead("a", c.dead)
			adopter.adopt(context.Background())
			done := got.wait(t)
			if !done.Recovered || done.Key != key || len(done.Fragments) == 0 || len(done.Fragments) > len(indexed) {
				t.Fatalf("adopted %d fragments (recovered=%v) of %d indexed", len(done.Fragments), done.Recovered, len(indexed))
			}
			last := done.Fragments[len(done.Fragments)-1]
			if done.Duration != last.Start+last.Duration || done.Size < last.Offset+last.Size || done.Size%storage.MinPartSize != 0 {
				t.Fatalf("adopted recording: %s, %d bytes; last fragment %+v", done.Duration, done.Size, last)
			}
			checkObject(t, store, done)
			adopter.active.Wait()
			if !ledger.empty() {
				t.Fatal("the ledger still has the adopted recording")
			}
			if ups, err := store.ListUploads(context.Background(), ""); err != nil || len(ups) != 0 {
				t.Fatalf("uploads left: %+v, %v", ups, err)
			}
		})
	}
}

// A node that comes back with its spool after another node adopted its recording leaves
// that recording alone.
func TestRecoverLeavesAnAdoptedRecording(t *testing.T) {
	store, ledger := newStore(t), newLedgerDB()
	dir := t.TempDir()
	a, err := New(Config{Store: store, Dir: dir, MinFragment: 100 * time.Millisecond, Recorded: newCollected().recorded, Ledger: ledger.node("a")})
	if err != nil {
		t.Fatal(err)
	}
	rec := startBigAudio(t, a)
	rec.write(1 << 20)
	key := rec.key()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) { return ledger.known(key), "not in the ledger" })
	a.cancel()
	ledger.setOwner(key, "b")

	got := newCollected()
	again, err := New(Config{Store: store, Dir: dir, Recorded: got.recorded, Ledger: ledger.node("a")})
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	again.active.Wait()
	select {
	case <-got.got:
		t.Fatal("a recording adopted by another node was registered")
	default:
	}
	if spools, _ := storage.ListSpools(again.spoolDir); len(spools) != 0 {
		t.Fatalf("spools left: %+v", spools)
	}
	if ups, err := store.ListUploads(context.Background(), ""); err != nil || len(ups) != 1 {
		t.Fatalf("the adopter's upload: %+v, %v", ups, err)
	}
}

// A node starting while another records leaves the other's upload alone.
func TestRecoverLeavesLiveUploads(t *testing.T) {
	store, ledger := newStore(t), newLedgerDB()
	got := newCollected()
	a, err := New(Config{Store: store, Dir: t.TempDir(), MinFragment: 100 * time.Millisecond, Recorded: got.recorded, Ledger: ledger.node("a")})
	if err != nil {
		t.Fatal(err)
	}
	rec := startBigAudio(t, a)
	rec.write(1 << 20)
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		ups, err := store.ListUploads(context.Background(), "")
		return err == nil && len(ups) == 1, "no upload yet"
	})
	b, err := New(Config{Store: store, Dir: t.TempDir(), Recorded: newCollected().recorded, Ledger: ledger.node("b")})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.adopt(context.Background())
	rec.write(1 << 20)
	rec.out.Close(nil)
	done := got.wait(t)
	if done.Recovered || done.Size < 2<<20 {
		t.Fatalf("recording = %+v", done)
	}
	checkObject(t, store, done)
}
