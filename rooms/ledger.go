package rooms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/cluster"
	"onair/rooms/mongodb"
)

// A recording in progress is owned by the node that records it, through a lease of kind
// "recording" on "recording/<object key>" in the cluster registry, renewed by that node's
// heartbeat. Its owner alone writes its chunks and assembles, completes or drops it; so the
// other nodes never touch the recording of a live node. The ledger beside the lease holds
// what another node needs to complete the recording from the object store if the owner is
// lost with its disk: the recording's fixed fields and, as each chunk of its log reaches
// the store (an object of its own), the chunk and the segments it holds.
//
//	recording_uploads    {_id: object key, node, room_id, slug, run_id, started, content_type,
//	                      init_size, video_codec, audio_codec, width, height, created}
//	recording_fragments  {_id: "<key>#<chunk>", key, first: chunk, start, size,
//	                      fragments: [{o, s, t, d, k}]}   (one per segment)
//	                     key_first {key, first}
//
// Only the lease holder writes a recording's documents: the header is inserted once by the
// owner (one writer per document, see doc.go), chunks
// are inserted under ids that make a repeated insert a duplicate. A 24-hour broadcast of
// 8 MiB chunks at 6 Mbit/s is some 8 000 chunk documents of about 30 segments each: many
// small documents, never one large one.

const recordingKind = "recording"

func recordingResource(key string) string { return recordingKind + "/" + key }

// RecordingLedgerConfig configures a RecordingLedger. DB and Cluster are required.
type RecordingLedgerConfig struct {
	DB      *mongo.Database
	Cluster *cluster.Registry
	// AdoptAfter is how long a recording's owner must have been dead before another node
	// adopts it (default 1 min): longer than Cluster's StaleAfter, so that a node that
	// restarts under its id finishes its own recordings from its spool first.
	AdoptAfter time.Duration
	OpTimeout  time.Duration // bounds each MongoDB operation (default 3 s)
	Logger     *slog.Logger  // nil discards the logs
}

// LedgerRecording is what the ledger knows of a recording in progress.
type LedgerRecording struct {
	Key         string    `bson:"_id"`
	Node        string    `bson:"node"` // the node that began it
	RoomID      string    `bson:"room_id"`
	Slug        string    `bson:"slug"`
	RunID       string    `bson:"run_id"`
	Started     time.Time `bson:"started"`
	ContentType string    `bson:"content_type"`
	InitSize    int64     `bson:"init_size"`
	VideoCodec  string    `bson:"video_codec"`
	AudioCodec  string    `bson:"audio_codec"`
	Width       int       `bson:"width"`
	Height      int       `bson:"height"`
	Created     time.Time `bson:"created"`
}

// LedgerChunk is a chunk of a recording's log that the store holds, and its segments.
type LedgerChunk struct {
	N        int
	Start    int64
	Size     int64
	Segments []RecordingFragment
}

// LedgerOrphan is a recording whose owner is gone, now this node's.
type LedgerOrphan struct {
	Recording LedgerRecording
	// Chunks are those the owner noted, in order from chunk 1, up to the first missing.
	Chunks []LedgerChunk
	// Empty: the ledger had nothing but the lease (its owner stopped between taking it and
	// writing the header, before any chunk).
	Empty bool
}

// chunkDoc is a chunk's document; first is the chunk's number.
type chunkDoc struct {
	ID        string              `bson:"_id"`
	Key       string              `bson:"key"`
	First     int                 `bson:"first"`
	Start     int64               `bson:"start"`
	Size      int64               `bson:"size"`
	Fragments []RecordingFragment `bson:"fragments"`
}

// RecordingLedger keeps recordings' ownership and fragment indexes (see above). It is safe
// for concurrent use.
type RecordingLedger struct {
	cfg       RecordingLedgerConfig
	log       *slog.Logger
	uploads   *mongo.Collection
	fragments *mongo.Collection

	mu     sync.Mutex
	leases map[string]cluster.Lease // this process's leases, by key
}

// NewRecordingLedger checks cfg. It does not talk to MongoDB.
func NewRecordingLedger(cfg RecordingLedgerConfig) (*RecordingLedger, error) {
	if cfg.DB == nil || cfg.Cluster == nil {
		return nil, errors.New("rooms: RecordingLedgerConfig.DB and Cluster are required")
	}
	if cfg.AdoptAfter == 0 {
		cfg.AdoptAfter = time.Minute
	}
	if cfg.AdoptAfter <= cfg.Cluster.StaleAfter() {
		return nil, fmt.Errorf("rooms: AdoptAfter %s must be longer than the cluster's StaleAfter %s", cfg.AdoptAfter, cfg.Cluster.StaleAfter())
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &RecordingLedger{
		cfg: cfg, log: cfg.Logger.With("component", "recordings"),
		uploads:   cfg.DB.Collection("recording_uploads"),
		fragments: cfg.DB.Collection("recording_fragments"),
		leases:    map[string]cluster.Lease{},
	}, nil
}

// EnsureIndexes creates the fragments' index (idempotent).
func (l *RecordingLedger) EnsureIndexes(ctx context.Context) error {
	ctx, cancel := l.op(ctx)
	defer cancel()
	return dbError("recording ledger indexes", mongodb.CreateIndexes(ctx, l.fragments,
		mongodb.Index{Name: "key_first", Keys: mongodb.Keys("key", 1, "first", 1)}))
}

func (l *RecordingLedger) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.cfg.OpTimeout)
}

func (l *RecordingLedger) remember(key string, lease cluster.Lease) {
	l.mu.Lock()
	l.leases[key] = lease
	l.mu.Unlock()
}

// Begin makes this node the recording's owner and writes its header. Both steps may be
// repeated.
func (l *RecordingLedger) Begin(ctx context.Context, rec LedgerRecording) error {
	lease, err := l.cfg.Cluster.Acquire(ctx, recordingKind, recordingResource(rec.Key), nil)
	if err != nil {
		return dbError("own recording "+rec.Key, err)
	}
	l.remember(rec.Key, lease)
	rec.Node, rec.Created = l.cfg.Cluster.ID(), time.Now().UTC().Truncate(time.Millisecond)
	octx, cancel := l.op(ctx)
	defer cancel()
	if _, err := l.uploads.InsertOne(octx, rec); err != nil && !mongodb.IsDup(err) {
		return dbError("insert recording ledger "+rec.Key, err)
	}
	return nil
}

// Stored notes a chunk of the recording that the store holds. A node that lost the
// recording to another notes nothing more.
func (l *RecordingLedger) Stored(ctx context.Context, key string, c LedgerChunk) error {
	l.mu.Lock()
	lease, ok := l.leases[key]
	l.mu.Unlock()
	if ok {
		if err := l.cfg.Cluster.Holds(ctx, lease); err != nil {
			return dbError("note chunk of "+key, err)
		}
	}
	doc := chunkDoc{ID: fmt.Sprintf("%s#%d", key, c.N), Key: key, First: c.N, Start: c.Start, Size: c.Size, Fragments: c.Segments}
	octx, cancel := l.op(ctx)
	defer cancel()
	if _, err := l.fragments.InsertOne(octx, doc); err != nil && !mongodb.IsDup(err) {
		// A duplicate is an earlier attempt that landed, its answer lost.
		return dbError("note chunk of "+key, err)
	}
	return nil
}

// Done deletes a finished recording's entries and lease. A recording another node owns
// now is left to it.
func (l *RecordingLedger) Done(ctx context.Context, key string) error {
	l.mu.Lock()
	lease, ok := l.leases[key]
	l.mu.Unlock()
	if !ok {
		cur, found, err := l.cfg.Cluster.Current(ctx, recordingResource(key))
		if err != nil {
			return dbError("read lease of recording "+key, err)
		}
		ok = found && !cur.Released()
		lease = cur
	}
	if ok && lease.Node != l.cfg.Cluster.ID() {
		l.log.Warn("recording owned by another node now; its ledger is left to it", "key", key, "node", lease.Node)
		return nil
	}
	if ok {
		if err := l.cfg.Cluster.Holds(ctx, lease); errors.Is(err, cluster.ErrLost) {
			l.log.Warn("recording taken over by another node; its ledger is left to it", "key", key)
			l.forget(key)
			return nil
		} else if err != nil {
			return dbError("check lease of recording "+key, err)
		}
	}
	octx, cancel := l.op(ctx)
	defer cancel()
	if _, err := l.fragments.DeleteMany(octx, bson.D{{Key: "key", Value: key}}); err != nil {
		return dbError("delete recording fragments "+key, err)
	}
	if _, err := l.uploads.DeleteOne(octx, bson.D{{Key: "_id", Value: key}}); err != nil {
		return dbError("delete recording ledger "+key, err)
	}
	if ok {
		if err := l.cfg.Cluster.Finish(ctx, lease); err != nil && !errors.Is(err, cluster.ErrLost) {
			return dbError("end lease of recording "+key, err)
		}
	}
	l.forget(key)
	return nil
}

func (l *RecordingLedger) forget(key string) {
	l.mu.Lock()
	delete(l.leases, key)
	l.mu.Unlock()
}

// Resume reports whether this node owns a recording it found on its disk: it held the
// lease (renewed now, so that a node adopting it at this very moment, from this node's
// old heartbeat, loses), or nobody did (a recording older than leases). false: another
// node adopted it.
func (l *RecordingLedger) Resume(ctx context.Context, key string) (bool, error) {
	if err := l.beatFirst(ctx); err != nil {
		return false, err
	}
	lease, err := l.cfg.Cluster.Acquire(ctx, recordingKind, recordingResource(key), nil)
	if errors.Is(err, cluster.ErrHeld) {
		return false, nil
	}
	if err != nil {
		return false, dbError("own recording "+key, err)
	}
	renewed, err := l.cfg.Cluster.Renew(ctx, lease)
	if errors.Is(err, cluster.ErrLost) {
		return false, nil
	}
	if err != nil {
		return false, dbError("renew lease of recording "+key, err)
	}
	l.remember(key, renewed)
	return true, nil
}

// beatFirst writes this node's heartbeat before it renews a lease it held before a restart:
// a node deciding to take the lease over from the old heartbeat then races the renewal on
// the lease's unique generation, and one deciding later finds this node alive.
func (l *RecordingLedger) beatFirst(ctx context.Context) error {
	if err := l.cfg.Cluster.Beat(ctx); err != nil {
		return dbError("heartbeat before renewing a recording's lease", err)
	}
	return nil
}

// Orphans makes this node the owner of the recordings that need one and returns them with
// their ledger entries: those whose owner has been dead for AdoptAfter, this node's own
// that it does not have in hand, and entries no lease explains.
func (l *RecordingLedger) Orphans(ctx context.Context, inHand func(key string) bool) ([]LedgerOrphan, error) {
	reg := l.cfg.Cluster
	leases, err := reg.Leases(ctx, recordingKind)
	if err != nil {
		return nil, dbError("list recording leases", err)
	}
	leased := map[string]bool{}
	var claimed []string
	claim := func(key string, lease cluster.Lease, err error) error {
		switch {
		case errors.Is(err, cluster.ErrHeld), errors.Is(err, cluster.ErrLost):
			return nil
		case err != nil:
			return dbError("adopt recording "+key, err)
		}
		l.remember(key, lease)
		claimed = append(claimed, key)
		return nil
	}
	for _, cur := range leases {
		key := strings.TrimPrefix(cur.Resource, recordingKind+"/")
		leased[key] = true
		var lease cluster.Lease
		var err error
		switch {
		case cur.Node != reg.ID():
			lease, err = reg.Acquire(ctx, recordingKind, cur.Resource, reg.IfDeadFor(l.cfg.AdoptAfter))
		case inHand(key):
			continue
		default:
			if err := l.beatFirst(ctx); err != nil {
				return nil, err
			}
			lease, err = reg.Renew(ctx, cur)
		}
		if err := claim(key, lease, err); err != nil {
			return nil, err
		}
	}
	headers, err := l.headerKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, key := range headers {
		if leased[key] || inHand(key) {
			continue
		}
		lease, err := reg.Acquire(ctx, recordingKind, recordingResource(key), nil)
		if err := claim(key, lease, err); err != nil {
			return nil, err
		}
	}
	out := make([]LedgerOrphan, 0, len(claimed))
	for _, key := range claimed {
		o, err := l.entry(ctx, key)
		if err != nil {
			return out, err
		}
		l.log.Info("recording adopted", "key", key, "empty", o.Empty, "chunks", len(o.Chunks))
		out = append(out, o)
	}
	return out, nil
}

func (l *RecordingLedger) headerKeys(ctx context.Context) ([]string, error) {
	octx, cancel := l.op(ctx)
	defer cancel()
	cur, err := l.uploads.Find(octx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, dbError("list recording ledger", err)
	}
	var docs []struct {
		Key string `bson:"_id"`
	}
	if err := cur.All(octx, &docs); err != nil {
		return nil, dbError("list recording ledger", err)
	}
	keys := make([]string, len(docs))
	for i, d := range docs {
		keys[i] = d.Key
	}
	return keys, nil
}

// entry reads a recording's header and fragments, up to the first batch missing.
func (l *RecordingLedger) entry(ctx context.Context, key string) (LedgerOrphan, error) {
	o := LedgerOrphan{Recording: LedgerRecording{Key: key}}
	octx, cancel := l.op(ctx)
	defer cancel()
	err := l.uploads.FindOne(octx, bson.D{{Key: "_id", Value: key}}).Decode(&o.Recording)
	if errors.Is(err, mongo.ErrNoDocuments) {
		o.Empty = true
		return o, nil
	}
	if err != nil {
		return o, dbError("read recording ledger "+key, err)
	}
	cur, err := l.fragments.Find(octx, bson.D{{Key: "key", Value: key}}, options.Find().SetSort(bson.D{{Key: "first", Value: 1}}))
	if err != nil {
		return o, dbError("read recording chunks "+key, err)
	}
	var docs []chunkDoc
	if err := cur.All(octx, &docs); err != nil {
		return o, dbError("read recording chunks "+key, err)
	}
	for _, d := range docs {
		if d.First != len(o.Chunks)+1 {
			break // a chunk never noted: the recording ends before it
		}
		o.Chunks = append(o.Chunks, LedgerChunk{N: d.First, Start: d.Start, Size: d.Size, Segments: d.Fragments})
	}
	return o, nil
}

// Known reports whether a node owns the key or the ledger has an entry for it.
func (l *RecordingLedger) Known(ctx context.Context, key string) (bool, error) {
	if _, ok, err := l.cfg.Cluster.Current(ctx, recordingResource(key)); err != nil || ok {
		return ok, dbError("read lease of recording "+key, err)
	}
	octx, cancel := l.op(ctx)
	defer cancel()
	n, err := l.uploads.CountDocuments(octx, bson.D{{Key: "_id", Value: key}})
	if err != nil {
		return false, dbError("read recording ledger "+key, err)
	}
	return n > 0, nil
}
