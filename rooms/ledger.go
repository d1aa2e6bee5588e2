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
// heartbeat. Its owner alone writes its multipart upload, and completes or aborts it; so
// the other nodes never touch the upload of a live node. The ledger beside the lease holds
// what another node needs to complete the recording from the object store if the owner is
// lost with its disk: the recording's fixed fields and, as the store acknowledges parts,
// the fragment index of the bytes it holds.
//
//	recording_uploads    {_id: object key, node, room_id, slug, run_id, started, content_type,
//	                      init_size, video_codec, audio_codec, width, height, upload_id, created}
//	recording_fragments  {_id: "<key>#<first>", key, first, fragments: [{o, s, t, d, k}]}
//	                     key_first {key, first}
//
// Only the lease holder writes a recording's documents: the header is inserted once and
// its upload_id set by the owner (one writer per document, see doc.go), fragments are inserted in batches of at most maxLedgerBatch under ids
// that make a repeated insert a duplicate. A 24-hour broadcast of 1-second fragments is
// some 86 000 fragments: many small documents, never one large one.

const (
	recordingKind = "recording"
	// maxLedgerBatch bounds a fragments document (about 60 bytes a fragment).
	maxLedgerBatch = 1000
)

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
	UploadID    string    `bson:"upload_id"`
	Created     time.Time `bson:"created"`
	// Fragments index the bytes the store holds, in order (not stored in this document).
	Fragments []RecordingFragment `bson:"-"`
}

// LedgerOrphan is a recording whose owner is gone, now this node's.
type LedgerOrphan struct {
	Recording LedgerRecording
	// Empty: the ledger had nothing but the lease (its owner stopped between taking it and
	// writing the header, before any upload).
	Empty bool
}

type fragmentsDoc struct {
	ID        string              `bson:"_id"`
	Key       string              `bson:"key"`
	First     int                 `bson:"first"`
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
	rec.Node, rec.UploadID, rec.Created = l.cfg.Cluster.ID(), "", time.Now().UTC().Truncate(time.Millisecond)
	octx, cancel := l.op(ctx)
	defer cancel()
	if _, err := l.uploads.InsertOne(octx, rec); err != nil && !mongodb.IsDup(err) {
		return dbError("insert recording ledger "+rec.Key, err)
	}
	return nil
}

// Upload notes the recording's multipart upload.
func (l *RecordingLedger) Upload(ctx context.Context, key, uploadID string) error {
	octx, cancel := l.op(ctx)
	defer cancel()
	_, err := l.uploads.UpdateOne(octx, bson.D{{Key: "_id", Value: key}}, bson.D{{Key: "$set", Value: bson.D{{Key: "upload_id", Value: uploadID}}}})
	return dbError("note upload of "+key, err)
}

// Stored adds fragments number first, first+1, ... of the recording, whose bytes the store
// holds. A node that lost the recording to another stores nothing more.
func (l *RecordingLedger) Stored(ctx context.Context, key string, first int, frags []RecordingFragment) error {
	l.mu.Lock()
	lease, ok := l.leases[key]
	l.mu.Unlock()
	if ok {
		if err := l.cfg.Cluster.Holds(ctx, lease); err != nil {
			return dbError("store fragments of "+key, err)
		}
	}
	for len(frags) > 0 {
		n := min(len(frags), maxLedgerBatch)
		doc := fragmentsDoc{ID: fmt.Sprintf("%s#%d", key, first), Key: key, First: first, Fragments: frags[:n]}
		octx, cancel := l.op(ctx)
		_, err := l.fragments.InsertOne(octx, doc)
		if mongodb.IsDup(err) {
			// An earlier attempt landed, its answer lost, perhaps with fewer fragments
			// than now: carry on after those it holds.
			var had fragmentsDoc
			err = l.fragments.FindOne(octx, bson.D{{Key: "_id", Value: doc.ID}}).Decode(&had)
			n = min(len(had.Fragments), n)
		}
		cancel()
		if err != nil {
			return dbError("store fragments of "+key, err)
		}
		if n == 0 {
			return fmt.Errorf("store fragments of %s: batch %s is empty", key, doc.ID)
		}
		frags, first = frags[n:], first+n
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
		l.log.Info("recording adopted", "key", key, "empty", o.Empty, "fragments", len(o.Recording.Fragments))
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
		return o, dbError("read recording fragments "+key, err)
	}
	var docs []fragmentsDoc
	if err := cur.All(octx, &docs); err != nil {
		return o, dbError("read recording fragments "+key, err)
	}
	for _, d := range docs {
		have := len(o.Recording.Fragments)
		if d.First > have {
			break // a batch never stored: the index stops before it
		}
		if have-d.First < len(d.Fragments) {
			o.Recording.Fragments = append(o.Recording.Fragments, d.Fragments[have-d.First:]...)
		}
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
