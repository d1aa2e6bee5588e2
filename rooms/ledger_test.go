package rooms

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/rooms/cluster"
	"onair/scripts/testenv"
)

// ledgerNodes are the recording ledgers of nodes "a" and "b" on one FerretDB and clock.
type ledgerNodes struct {
	t     *testing.T
	db    *mongo.Database
	clock *fakeClock
	regs  map[string]*cluster.Registry
}

const testAdoptAfter = time.Minute

func newLedgerNodes(t *testing.T) *ledgerNodes {
	m := testenv.StartMongoDB(t)
	return &ledgerNodes{t: t, db: m.Database(t, "ledger"), clock: &fakeClock{}, regs: map[string]*cluster.Registry{}}
}

// ledger is node id's ledger, as a process that starts now: a heartbeat, no memory.
func (n *ledgerNodes) ledger(id string) *RecordingLedger {
	n.t.Helper()
	reg, err := cluster.New(cluster.Config{DB: n.db, NodeID: id, Now: n.clock.Now, OpTimeout: 2 * time.Second})
	if err != nil {
		n.t.Fatal(err)
	}
	if err := reg.EnsureIndexes(context.Background()); err != nil {
		n.t.Fatal(err)
	}
	n.regs[id] = reg
	n.beat(id)
	l, err := NewRecordingLedger(RecordingLedgerConfig{DB: n.db, Cluster: reg, AdoptAfter: testAdoptAfter})
	if err != nil {
		n.t.Fatal(err)
	}
	if err := l.EnsureIndexes(context.Background()); err != nil {
		n.t.Fatal(err)
	}
	return l
}

func (n *ledgerNodes) beat(id string) {
	n.t.Helper()
	if err := n.regs[id].Beat(context.Background()); err != nil {
		n.t.Fatal(err)
	}
}

// testChunk is chunk n of a recording: 30 segments of 1 s, 1000 bytes each.
func testChunk(n int) LedgerChunk {
	c := LedgerChunk{N: n, Start: 100 + int64(n-1)*30_000, Size: 30_000}
	for i := range 30 {
		j := int64((n-1)*30 + i)
		c.Segments = append(c.Segments, RecordingFragment{Offset: 100 + 1000*j, Size: 1000, Start: time.Duration(j) * time.Second, Duration: time.Second, Key: true})
	}
	return c
}

func nothingInHand(string) bool { return false }

func TestRecordingLedger(t *testing.T) {
	ctx := context.Background()
	const key = "recordings/room1/run1/recording.mp4"
	header := LedgerRecording{Key: key, RoomID: "room1", Slug: "studio", RunID: "run1", Started: time.Now().UTC().Truncate(time.Millisecond),
		ContentType: "video/mp4", InitSize: 100, VideoCodec: "h264", AudioCodec: "aac", Width: 640, Height: 360}
	cases := []struct {
		name string
		run  func(t *testing.T, n *ledgerNodes)
	}{
		{"a dead node's recording is adopted once the grace period is over, with its index", func(t *testing.T, n *ledgerNodes) {
			a, b := n.ledger("a"), n.ledger("b")
			if err := a.Begin(ctx, header); err != nil {
				t.Fatal(err)
			}
			if err := a.Begin(ctx, header); err != nil {
				t.Fatalf("Begin again: %v", err)
			}
			// Noted as chunks reach the store; a repeated note is harmless.
			for _, c := range []int{1, 2, 2, 3} {
				if err := a.Stored(ctx, key, testChunk(c)); err != nil {
					t.Fatal(err)
				}
			}
			if known, err := b.Known(ctx, key); err != nil || !known {
				t.Fatalf("Known = %v, %v", known, err)
			}
			for _, wait := range []time.Duration{0, n.regs["a"].StaleAfter() + time.Second} {
				n.clock.Advance(wait)
				n.beat("b")
				if got, err := b.Orphans(ctx, nothingInHand); err != nil || len(got) != 0 {
					t.Fatalf("%s after a's heartbeat: orphans %d, %v", wait, len(got), err)
				}
			}
			n.clock.Advance(testAdoptAfter)
			n.beat("b")
			got, err := b.Orphans(ctx, nothingInHand)
			if err != nil || len(got) != 1 {
				t.Fatalf("orphans after the grace period: %d, %v", len(got), err)
			}
			o, chunks := got[0].Recording, got[0].Chunks
			if got[0].Empty || o.Node != "a" || o.Slug != "studio" || o.InitSize != 100 || !o.Started.Equal(header.Started) ||
				len(chunks) != 3 || chunks[2].N != 3 || chunks[2].Start != testChunk(3).Start || len(chunks[2].Segments) != 30 ||
				chunks[2].Segments[29] != testChunk(3).Segments[29] {
				t.Fatalf("orphan = %+v with %d chunks", got[0], len(chunks))
			}
			// The former owner, back, has lost it: it writes nothing more and leaves it.
			if err := a.Stored(ctx, key, testChunk(4)); !errors.Is(err, cluster.ErrLost) {
				t.Fatalf("Stored by the former owner = %v, want ErrLost", err)
			}
			if err := a.Done(ctx, key); err != nil {
				t.Fatal(err)
			}
			if known, _ := b.Known(ctx, key); !known {
				t.Fatal("the former owner's Done removed the adopter's recording")
			}
			if got, err := b.Orphans(ctx, func(string) bool { return true }); err != nil || len(got) != 0 {
				t.Fatalf("orphans in hand: %d, %v", len(got), err)
			}
			if err := b.Done(ctx, key); err != nil {
				t.Fatal(err)
			}
			if known, err := b.Known(ctx, key); err != nil || known {
				t.Fatalf("Known after Done = %v, %v", known, err)
			}
			if n, _ := n.db.Collection("recording_fragments").CountDocuments(ctx, bson.D{}); n != 0 {
				t.Fatalf("%d fragments documents left", n)
			}
		}},
		{"a node back under its id resumes its own; once adopted, it may not", func(t *testing.T, n *ledgerNodes) {
			if err := n.ledger("a").Begin(ctx, header); err != nil {
				t.Fatal(err)
			}
			again := n.ledger("a")
			if own, err := again.Resume(ctx, key); err != nil || !own {
				t.Fatalf("Resume by the owner = %v, %v", own, err)
			}
			b := n.ledger("b")
			n.clock.Advance(testAdoptAfter + n.regs["a"].StaleAfter())
			n.beat("b")
			if got, err := b.Orphans(ctx, nothingInHand); err != nil || len(got) != 1 {
				t.Fatalf("orphans: %d, %v", len(got), err)
			}
			if own, err := n.ledger("a").Resume(ctx, key); err != nil || own {
				t.Fatalf("Resume after adoption = %v, %v", own, err)
			}
			// A spool older than leases is its node's.
			if own, err := again.Resume(ctx, "recordings/room1/old/recording.mp4"); err != nil || !own {
				t.Fatalf("Resume of an unknown key = %v, %v", own, err)
			}
		}},
		{"a node back without its disk finds its own recordings", func(t *testing.T, n *ledgerNodes) {
			if err := n.ledger("a").Begin(ctx, header); err != nil {
				t.Fatal(err)
			}
			again := n.ledger("a")
			if got, err := again.Orphans(ctx, func(string) bool { return true }); err != nil || len(got) != 0 {
				t.Fatalf("orphans in hand: %d, %v", len(got), err)
			}
			got, err := again.Orphans(ctx, nothingInHand)
			if err != nil || len(got) != 1 || got[0].Recording.RunID != "run1" {
				t.Fatalf("own orphans: %+v, %v", got, err)
			}
			if err := again.Done(ctx, key); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := n.regs["a"].Current(ctx, recordingResource(key)); ok {
				t.Fatal("the lease outlived Done")
			}
		}},
		{"the chunks end at the first one never noted", func(t *testing.T, n *ledgerNodes) {
			a := n.ledger("a")
			if err := a.Begin(ctx, header); err != nil {
				t.Fatal(err)
			}
			for _, c := range []int{1, 2, 4} {
				if err := a.Stored(ctx, key, testChunk(c)); err != nil {
					t.Fatal(err)
				}
			}
			o, err := a.entry(ctx, key)
			if err != nil || len(o.Chunks) != 2 {
				t.Fatalf("entry = %+v, %v", o, err)
			}
		}},
		{"a lease without its entry is an empty orphan", func(t *testing.T, n *ledgerNodes) {
			n.ledger("a")
			if _, err := n.regs["a"].Acquire(ctx, recordingKind, recordingResource(key), nil); err != nil {
				t.Fatal(err)
			}
			b := n.ledger("b")
			n.clock.Advance(testAdoptAfter + n.regs["a"].StaleAfter())
			n.beat("b")
			got, err := b.Orphans(ctx, nothingInHand)
			if err != nil || len(got) != 1 || !got[0].Empty {
				t.Fatalf("orphans: %+v, %v", got, err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newLedgerNodes(t)) })
	}
}

func TestRecordingLedgerConfig(t *testing.T) {
	n := newLedgerNodes(t)
	n.ledger("a")
	if _, err := NewRecordingLedger(RecordingLedgerConfig{DB: n.db, Cluster: n.regs["a"], AdoptAfter: 5 * time.Second}); err == nil {
		t.Fatal("AdoptAfter within StaleAfter accepted")
	}
}
