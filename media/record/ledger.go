package record

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"onair/storage"
)

// Ledger is where the nodes sharing a bucket agree on who owns each recording in progress,
// and where its owner keeps what another node needs to complete it if the owner is lost
// with its disk: the recording's fixed fields, its upload, and the fragment index of the
// bytes the store already holds. rooms implements it in MongoDB, with leases renewed by
// the node's heartbeat; cmd/onair wires it.
type Ledger interface {
	// Begin makes this node the owner of the recording rec.Key and stores rec's fixed
	// fields (its fragments are left out). It runs before the recording's multipart upload
	// is created, retried until it succeeds, so it must be idempotent.
	Begin(ctx context.Context, rec Recording) error
	// Upload notes the multipart upload that receives the recording's parts.
	Upload(ctx context.Context, key, uploadID string) error
	// Stored adds fragments whose bytes the store holds: fragments number first,
	// first+1, ... of the recording (counting from 0), following those stored before.
	// Storing the same fragments again is harmless.
	Stored(ctx context.Context, key string, first int, frags []Fragment) error
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
	// Known reports whether any node owns the key, or the ledger has an entry for it: an
	// upload of such a key is never aborted as dangling.
	Known(ctx context.Context, key string) (bool, error)
}

// Orphan is a recording whose owner is gone, now this node's to complete.
type Orphan struct {
	// Recording holds the fixed fields and the fragments the ledger had (Recovered unset).
	Recording Recording
	// UploadID is the multipart upload the owner noted ("" if it had not).
	UploadID string
	// Empty: the ledger has nothing but the ownership (the owner stopped between taking it
	// and writing its entry, before any upload): there is nothing to complete.
	Empty bool
}

// fixed is rec without what grows as it records.
func (rec Recording) fixed() Recording {
	rec.Fragments, rec.Size, rec.Duration, rec.EndedAt, rec.Recovered = nil, 0, 0, time.Time{}, false
	return rec
}

// ledgerWriter keeps one recording's ledger entry in step with its upload, on a goroutine
// of its own: the spool tells it what the store holds, it writes the upload id and the
// fragments that lie within. A database that is away delays the entry, never the upload.
type ledgerWriter struct {
	ledger Ledger
	key    string
	log    *slog.Logger
	// within returns the fragments from number first on that end within end bytes.
	within func(first int, end int64) []Fragment

	mu       sync.Mutex
	progress storage.SpoolProgress

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

func startLedgerWriter(ctx context.Context, l Ledger, key string, log *slog.Logger, within func(int, int64) []Fragment) *ledgerWriter {
	w := &ledgerWriter{ledger: l, key: key, log: log, within: within,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run(ctx)
	return w
}

// tell is the spool's Progress callback.
func (w *ledgerWriter) tell(p storage.SpoolProgress) {
	w.mu.Lock()
	w.progress = p
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
	noted, stored := "", 0
	wait := 200 * time.Millisecond
	for {
		select {
		case <-w.wake:
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		}
		for {
			w.mu.Lock()
			p := w.progress
			w.mu.Unlock()
			frags := w.within(stored, p.Uploaded)
			if p.UploadID == noted && len(frags) == 0 {
				wait = 200 * time.Millisecond
				break
			}
			err := w.write(ctx, p.UploadID, noted, stored, frags)
			if err == nil {
				noted, stored = p.UploadID, stored+len(frags)
				continue
			}
			w.log.Warn("recording ledger behind its upload; retrying", "key", w.key, "fragments", stored, "retry_in", wait, "err", err)
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
}

func (w *ledgerWriter) write(ctx context.Context, id, noted string, first int, frags []Fragment) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if id != noted {
		if err := w.ledger.Upload(ctx, w.key, id); err != nil {
			return err
		}
	}
	if len(frags) == 0 {
		return nil
	}
	return w.ledger.Stored(ctx, w.key, first, frags)
}

// keepFragments is how much of found bytes is worth keeping for rec: up to the end of its
// last fragment that lies within them (0: none does).
func keepFragments(rec Recording) func(found int64) int64 {
	return func(found int64) int64 {
		c := rec
		c.truncateTo(found)
		if len(c.Fragments) == 0 {
			return 0
		}
		return c.Size
	}
}
