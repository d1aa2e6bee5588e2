package uploads

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/rooms"
	"onair/rooms/cluster"
	"onair/scripts/testenv"
	"onair/storage"
	"onair/storage/local"
)

// clock is the settable time of a test's nodes and uploads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// countingProcessor is a Processor that records its calls and writes a one-segment
// recording, so that these tests are about the uploads' life, not the remux (media/upload
// has its own tests, cmd/onair/e2e the whole).
type countingProcessor struct {
	store storage.Store
	mu    sync.Mutex
	calls int
}

func (p *countingProcessor) Process(ctx context.Context, src string, size int64, dst string) (Processed, string, error) {
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	if err := p.store.Put(ctx, dst, bytes.NewReader([]byte("recording")), 9, "video/mp4"); err != nil {
		return Processed{}, "", err
	}
	return Processed{InitSize: 4, Size: 9, Duration: time.Second, Segments: []rooms.RecordingSegment{{Size: 5, Duration: time.Second, Key: true}}}, "", nil
}

func (p *countingProcessor) count() int { p.mu.Lock(); defer p.mu.Unlock(); return p.calls }

type env struct {
	clk   *clock
	store *local.Store
	rooms *rooms.Service
	owner rooms.User
	room  rooms.Room
	a, b  *cluster.Registry
	svcA  *Service
	svcB  *Service
	proc  *countingProcessor
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	m := testenv.StartMongoDB(t)
	db := m.Database(t, "uploads")
	e := &env{clk: &clock{t: time.Now()}}
	var err error
	e.store, err = local.New(local.Config{Root: t.TempDir(), Secret: bytes.Repeat([]byte("s"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	node := func(id string) *cluster.Registry {
		r, err := cluster.New(cluster.Config{DB: db, NodeID: id, Now: e.clk.Now, OpTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.EnsureIndexes(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Beat(ctx); err != nil {
			t.Fatal(err)
		}
		return r
	}
	e.a, e.b = node("a"), node("b")
	e.rooms, err = rooms.New(rooms.Config{DB: db, Cluster: e.a, Password: rooms.PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rooms.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	login, err := e.rooms.SignUp(ctx, rooms.SignUp{Email: "ann@example.com", Handle: "ann", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	e.owner = login.User
	if e.room, _, err = e.rooms.CreateRoom(ctx, e.owner, rooms.NewRoom{Slug: "ann-vod", Title: "Talks"}); err != nil {
		t.Fatal(err)
	}
	e.proc = &countingProcessor{store: e.store}
	svc := func(reg *cluster.Registry) *Service {
		s, err := New(Config{DB: db, Store: e.store, Rooms: e.rooms, Cluster: reg, Processor: e.proc, MaxBytes: 64 << 20,
			MaxPending: 2, TTL: time.Hour, Now: e.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	e.svcA, e.svcB = svc(e.a), svc(e.b)
	if err := e.svcA.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// sendAll stores every part of v, as a browser would through the part URLs.
func (e *env) sendAll(t *testing.T, v View, data []byte) {
	t.Helper()
	var d doc
	if err := e.svcA.uploads.FindOne(context.Background(), bson.D{{Key: "_id", Value: mustOID(t, v.ID)}}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= d.parts(); n++ {
		p := data[int64(n-1)*d.PartSize : int64(n-1)*d.PartSize+d.partSize(n)]
		if _, err := e.store.UploadPart(context.Background(), d.Key, d.StoreUpload, n, bytes.NewReader(p), int64(len(p))); err != nil {
			t.Fatal(err)
		}
	}
}

func mustOID(t *testing.T, id string) bson.ObjectID {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	return oid
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	stranger, err := e.rooms.SignUp(ctx, rooms.SignUp{Email: "bob@example.com", Handle: "bob", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		actor rooms.User
		in    NewUpload
		want  error
	}{
		"not the owner":   {stranger.User, NewUpload{Filename: "a.mp4", Size: 10}, rooms.ErrForbidden},
		"too large":       {e.owner, NewUpload{Filename: "a.mp4", Size: 65 << 20}, ErrTooLarge},
		"not a video":     {e.owner, NewUpload{Filename: "a.exe", Size: 10}, rooms.ErrInvalid},
		"no size":         {e.owner, NewUpload{Filename: "a.mp4"}, rooms.ErrInvalid},
		"html":            {e.owner, NewUpload{Filename: "a.mp4", Size: 10, ContentType: "text/html"}, rooms.ErrInvalid},
		"control in name": {e.owner, NewUpload{Filename: "a\x01.mp4", Size: 10}, rooms.ErrInvalid},
	} {
		if _, err := e.svcA.Create(ctx, c.actor, e.room, c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if n, _ := e.svcA.uploads.CountDocuments(ctx, bson.D{}); n != 0 {
		t.Fatalf("%d uploads recorded after refusals", n)
	}
	if ups, _ := e.store.ListUploads(ctx, Prefix); len(ups) != 0 {
		t.Fatalf("multipart uploads started after refusals: %v", ups)
	}
	// The room's unfinished uploads are bounded.
	for range 2 {
		if _, err := e.svcA.Create(ctx, e.owner, e.room, NewUpload{Filename: "a.mp4", Size: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svcA.Create(ctx, e.owner, e.room, NewUpload{Filename: "a.mp4", Size: 10}); !errors.Is(err, rooms.ErrConflict) {
		t.Fatalf("a third unfinished upload: %v, want ErrConflict", err)
	}
}

// A node never processes an upload another live node holds; once that node is dead, it
// does, once.
func TestProcessingLease(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	data := bytes.Repeat([]byte("v"), 12<<20)
	v, err := e.svcA.Create(ctx, e.owner, e.room, NewUpload{Filename: "talk.mp4", Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	e.sendAll(t, v, data)
	if v, err = e.svcA.Complete(ctx, e.owner, e.room, v.ID); err != nil || v.State != StateProcessing {
		t.Fatalf("complete: %+v %v", v, err)
	}
	// Node a took the lease and is processing (it stays alive, never finishes).
	if _, err := e.a.Acquire(ctx, leaseKind, "upload/"+v.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.svcB.processPending(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.proc.count(); n != 0 {
		t.Fatalf("node b processed an upload node a holds: %d calls", n)
	}
	// Node a goes silent; b keeps beating and takes over.
	e.clk.add(cluster.DefaultStaleAfter + time.Second)
	if err := e.b.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.svcB.processPending(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := e.svcB.Get(ctx, e.owner, e.room, v.ID)
	if err != nil || got.State != StateReady || got.BroadcastID == "" || e.proc.count() != 1 {
		t.Fatalf("after takeover: %+v %v, %d calls", got, err, e.proc.count())
	}
	b, err := e.rooms.GetBroadcast(ctx, got.BroadcastID)
	if err != nil || b.Source != rooms.SourceUpload || b.Ended == nil || b.Recording == nil || b.Recording.Status != rooms.RecordingReady {
		t.Fatalf("the upload's broadcast: %+v %v", b, err)
	}
	// Nothing of the upload is left in the store, and processing again does nothing.
	if _, err := e.store.Head(ctx, Prefix+e.room.ID+"/"+v.ID+"/source"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("uploaded file still stored: %v", err)
	}
	if err := e.svcA.processPending(ctx); err != nil || e.proc.count() != 1 {
		t.Fatalf("processed again: %v, %d calls", err, e.proc.count())
	}
}

// An upload left unfinished past its TTL is expired and its parts deleted.
func TestJanitorExpiresAbandonedUploads(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	v, err := e.svcA.Create(ctx, e.owner, e.room, NewUpload{Filename: "talk.mov", Size: 20 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var up doc
	if err := e.svcA.uploads.FindOne(ctx, bson.D{{Key: "_id", Value: mustOID(t, v.ID)}}).Decode(&up); err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte("v"), int(up.PartSize))
	if _, err := e.store.UploadPart(ctx, up.Key, up.StoreUpload, 1, bytes.NewReader(part), int64(len(part))); err != nil {
		t.Fatal(err)
	}
	d := func() View { got, _ := e.svcA.Get(ctx, e.owner, e.room, v.ID); return got }
	if err := e.svcA.Janitor(ctx); err != nil || d().State != StateUploading {
		t.Fatalf("janitor before the TTL: %v, state %s", err, d().State)
	}
	e.clk.add(time.Hour + time.Second)
	if err := e.svcA.Janitor(ctx); err != nil {
		t.Fatal(err)
	}
	if got := d(); got.State != StateExpired {
		t.Fatalf("after the TTL: %+v", got)
	}
	if ups, err := e.store.ListUploads(ctx, Prefix); err != nil || len(ups) != 0 {
		t.Fatalf("multipart uploads left: %v %v", ups, err)
	}
}
