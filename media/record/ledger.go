package record

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Recording describes a recording: one fMP4 object, its init segment at offset 0 and its
// segments after it, end to end.
type Recording struct {
	StreamName, StreamID, RoomID string
	Key                          string
	ContentType                  string
	Size                         int64
	InitSize                     int64
	Duration                     time.Duration
	VideoCodec, AudioCodec       string
	Width, Height                int
	StartedAt, EndedAt           time.Time
	// Segments index the object by segment (1 to 2 s each), for replays.
	Segments []Segment
	// Recovered is set when the recording was completed after a crash, or by another
	// node.
	Recovered bool
}

// Segment is one segment of a recording: a contiguous byte range of both tracks.
type Segment struct {
	Offset int64
	Size   int64
	// Start is the segment's media time from the recording's start.
	Start    time.Duration
	Duration time.Duration
	// Key is set when the segment begins with a key frame, so playback can start there.
	Key bool
}

// fixed is rec without what grows as it records.
func (rec Recording) fixed() Recording {
	rec.Segments, rec.Size, rec.Duration, rec.EndedAt, rec.Recovered = nil, 0, 0, time.Time{}, false
	return rec
}

// StoredChunk is a chunk of a recording's log that the store holds as an object
// (storage.ChunkKey), with the segments it holds.
type StoredChunk struct {
	N           int
	Start, Size int64
	Segments    []Segment
}

// Ledger is where the nodes sharing a bucket agree on who owns each recording in progress,
// and where its owner keeps what another node needs to complete it if the owner is lost
// with its disk: the recording's fixed fields and the chunks of its log the store holds,
// with their segments. rooms implements it in MongoDB, with leases renewed by the node's
// heartbeat; cmd/onair wires it.
type Ledger interface {
	// Begin makes this node the owner of the recording rec.Key and stores rec's fixed
	// fields. It runs before the recording's first chunk reaches the store, retried until
	// it succeeds, so it must be idempotent.
	Begin(ctx context.Context, rec Recording) error
	// Stored notes a chunk the store holds. Chunks are noted in order; noting one again is
	// harmless.
	Stored(ctx context.Context, key string, c StoredChunk) error
	// Done forgets a recording that is complete and registered, or dropped: its entries
	// go, and so does this node's ownership of it. Done of an unknown key is no error.
	Done(ctx context.Context, key string) error
	// Resume is asked for a recording this node finds on its own disk at start (or later,
	// after a failed attempt): whether this node owns it (still, or now that nobody does).
	// false: another node adopted it while this one was away.
	Resume(ctx context.Context, key string) (bool, error)
	// Orphans makes this node the owner of the recordings that need one, and returns them:
	// those whose owner has been dead for the grace period that lets a restarting node
	// finish its own, and this node's own that it does not have in hand (its disk was
	// lost). inHand reports the keys this process works on.
	Orphans(ctx context.Context, inHand func(key string) bool) ([]Orphan, error)
	// Known reports whether any node owns the key, or the ledger has an entry for it: the
	// chunks and uploads of such a key are never swept as dangling.
	Known(ctx context.Context, key string) (bool, error)
}

// Orphan is a recording whose owner is gone, now this node's to complete.
type Orphan struct {
	// Recording holds the fixed fields (Recovered unset).
	Recording Recording
	// Chunks are the chunks the owner noted as stored, in order from chunk 1.
	Chunks []StoredChunk
	// Empty: the ledger has nothing but the ownership (the owner stopped between taking it
	// and writing its entry, before any chunk): there is nothing to complete.
	Empty bool
}

// markerName is the recorder's file in a run's log directory: the recording's fixed
// fields. A log directory that has it is a recording, to recover if a crash left it.
const markerName = "recording.json"

func writeMarker(dir string, rec Recording) error {
	b, err := json.Marshal(rec.fixed())
	if err != nil {
		return fmt.Errorf("record %s: encode marker: %w", rec.Key, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, markerName), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("record %s: create marker: %w", rec.Key, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record %s: write marker: %w", rec.Key, err)
	}
	return nil
}

func readMarker(dir string) (Recording, error) {
	var rec Recording
	b, err := os.ReadFile(filepath.Join(dir, markerName))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.Key == "" {
		return rec, fmt.Errorf("record: marker in %s: %w", dir, err)
	}
	return rec, nil
}

// ledgerWriter notes a recording's stored chunks in the ledger, in order, on a goroutine
// of its own: a database that is away delays the ledger, never the uploads.
type ledgerWriter struct {
	ledger Ledger
	key    string
	log    *slog.Logger

	mu      sync.Mutex
	pending []StoredChunk
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func startLedgerWriter(ctx context.Context, l Ledger, key string, log *slog.Logger) *ledgerWriter {
	w := &ledgerWriter{ledger: l, key: key, log: log,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run(ctx)
	return w
}

func (w *ledgerWriter) tell(c StoredChunk) {
	w.mu.Lock()
	w.pending = append(w.pending, c)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// close stops the writer and waits for it: a write in flight ends first.
func (w *ledgerWriter) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *ledgerWriter) run(ctx context.Context) {
	defer close(w.done)
	wait := 200 * time.Millisecond
	for {
		w.mu.Lock()
		var next *StoredChunk
		if len(w.pending) > 0 {
			next = &w.pending[0]
		}
		w.mu.Unlock()
		if next == nil {
			select {
			case <-w.wake:
				continue
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			}
		}
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := w.ledger.Stored(octx, w.key, *next)
		cancel()
		if err == nil {
			w.mu.Lock()
			w.pending = w.pending[1:]
			w.mu.Unlock()
			wait = 200 * time.Millisecond
			continue
		}
		w.log.Warn("recording ledger behind its uploads; retrying", "key", w.key, "chunk", next.N, "retry_in", wait, "err", err)
		select {
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}
