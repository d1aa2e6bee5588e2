package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"onair/media"
	"onair/storage"
)

// Recording describes a finished recording: one fMP4 object, its init segment at offset 0
// and its fragments after it.
type Recording struct {
	StreamName, StreamID, Owner string
	Key                         string
	ContentType                 string
	Size                        int64
	InitSize                    int64
	Duration                    time.Duration
	VideoCodec, AudioCodec      string
	Width, Height               int
	StartedAt, EndedAt          time.Time
	Fragments                   []Fragment
	// Recovered is set when the recording was completed after a crash.
	Recovered bool
}

// Config configures a Recorder.
type Config struct {
	Logger *slog.Logger
	Store  storage.Store
	// Dir keeps spools and fragment indexes; it must survive restarts so that a crash
	// loses nothing.
	Dir string
	// MinFragment and MaxFragment bound fragment lengths (default 1 s and 4 s): fragments end
	// at the first key frame after MinFragment, or at MaxFragment in long GOPs.
	MinFragment, MaxFragment time.Duration
	// PartSize and MaxDisk are the spool's (see storage.SpoolConfig).
	PartSize, MaxDisk int64
	// Recorded is told about every finished recording, including those completed after a
	// crash or adopted from a lost node. It is retried until it succeeds, so it must be
	// idempotent.
	Recorded func(ctx context.Context, rec Recording) error
	// Ledger owns each recording for this node and keeps its fragment index, as its parts
	// reach the store, where the other nodes find it.
	Ledger Ledger
	// AdoptEvery is how often the recorder asks the Ledger for recordings to adopt and
	// retries recovering what its disk holds (default 30 s).
	AdoptEvery time.Duration
	// Failed, when set, is told when a stream that asked to be recorded is not (partial
	// false: its recording could not start) or stops being recorded before its end
	// (partial: what was recorded is kept, and goes through Recorded). It must return
	// quickly.
	Failed func(rec Recording, err error, partial bool)
}

// Recorder is a media.Output that records every stream whose route asks for it.
type Recorder struct {
	cfg      Config
	log      *slog.Logger
	spoolDir string
	indexDir string

	base   context.Context // spools live as long as this; cancelling it freezes them for recovery
	cancel context.CancelFunc
	active sync.WaitGroup

	mu    sync.Mutex
	sinks map[*sink]struct{}
	busy  map[string]bool // keys this process works on: recording, recovering, adopting
}

// New checks cfg and prepares cfg.Dir.
func New(cfg Config) (*Recorder, error) {
	if cfg.Store == nil || cfg.Dir == "" || cfg.Recorded == nil || cfg.Ledger == nil {
		return nil, errors.New("record: Store, Dir, Recorded and Ledger are required")
	}
	if cfg.AdoptEvery <= 0 {
		cfg.AdoptEvery = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MinFragment <= 0 {
		cfg.MinFragment = time.Second
	}
	if cfg.MaxFragment <= 0 {
		cfg.MaxFragment = 4 * time.Second
	}
	r := &Recorder{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "record"),
		spoolDir: filepath.Join(cfg.Dir, "spool"),
		indexDir: filepath.Join(cfg.Dir, "index"),
		sinks:    map[*sink]struct{}{},
		busy:     map[string]bool{},
	}
	for _, d := range []string{r.spoolDir, r.indexDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("record: create %s: %w", d, err)
		}
	}
	r.base, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// Run adopts the recordings of lost nodes and retries recovering what the disk holds, at
// once and every AdoptEvery, until ctx ends; then it gives recordings still finishing
// until finishBy to complete their uploads; whatever is left is frozen on disk and
// completed at next start (or, if this node does not come back in time, by another).
func (r *Recorder) Run(ctx context.Context, finishBy time.Duration) error {
	tick := time.NewTicker(r.cfg.AdoptEvery)
	defer tick.Stop()
	for {
		r.recoverLocal(ctx)
		r.adopt(ctx)
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
		}
		break
	}
	done := make(chan struct{})
	go func() {
		r.active.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(finishBy):
		r.log.Warn("recordings still uploading at shutdown; they complete at next start")
	}
	r.cancel()
	return nil
}

// Backlog is what recordings hold on local disk, waiting for the object store.
type Backlog struct {
	Recordings   int
	BytesPending int64
	PartsPending int
}

// Backlog sums the spools of the recordings in progress.
func (r *Recorder) Backlog() Backlog {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := Backlog{Recordings: len(r.sinks)}
	for k := range r.sinks {
		st := k.spool.Stats()
		b.BytesPending += st.Pending
		b.PartsPending += st.PartsPending
	}
	return b
}

// OpenSink implements media.Output.
func (r *Recorder) OpenSink(st *media.Stream) (media.Sink, error) {
	if !st.Route().Record {
		return nil, nil
	}
	k, err := r.openSink(st)
	if err != nil && r.cfg.Failed != nil {
		r.cfg.Failed(Recording{StreamName: st.Name(), StreamID: st.ID(), Owner: st.Route().Owner, StartedAt: st.StartedAt()}, err, false)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (r *Recorder) openSink(st *media.Stream) (*sink, error) {
	route := st.Route()
	room := route.Owner
	if room == "" {
		room = route.Name
	}
	key, err := storage.RecordingKey(room, st.ID(), "recording.mp4")
	if err != nil {
		return nil, fmt.Errorf("record %q: %w", st.Name(), err)
	}
	frag, init, err := newFragmenter(fragmenterConfig{MinFragment: r.cfg.MinFragment, MaxFragment: r.cfg.MaxFragment}, st.Tracks())
	if err != nil {
		return nil, err
	}
	rec := Recording{
		StreamName: st.Name(), StreamID: st.ID(), Owner: route.Owner, Key: key,
		ContentType: "video/mp4", InitSize: int64(len(init)),
		VideoCodec: string(st.VideoCodec()), AudioCodec: string(st.AudioCodec()),
		StartedAt: st.StartedAt(),
	}
	if v := st.Tracks().Video; v != nil {
		rec.Width, rec.Height = v.Width, v.Height
	}
	if !r.take(key) {
		return nil, fmt.Errorf("record %q: %s is being recorded already", st.Name(), key)
	}
	idx, err := createIndex(r.indexDir, rec)
	if err != nil {
		r.release(key)
		return nil, err
	}
	k := &sink{r: r, rec: rec, frag: frag, idx: idx, log: r.log.With("stream", st.Name(), "id", st.ID())}
	k.ledger = startLedgerWriter(r.base, r.cfg.Ledger, key, k.log, k.within)
	k.spool, err = storage.OpenSpool(r.base, storage.SpoolConfig{
		Dir: r.spoolDir, Store: r.cfg.Store, Key: key, ContentType: rec.ContentType,
		PartSize: r.cfg.PartSize, MaxDisk: r.cfg.MaxDisk, Logger: r.log,
		// The recording is this node's, in the ledger, before its upload exists.
		BeforeUpload: func(ctx context.Context) error { return r.cfg.Ledger.Begin(ctx, rec.fixed()) },
		Progress:     k.ledger.tell,
	})
	if err != nil {
		k.ledger.close()
		idx.remove()
		r.release(key)
		return nil, fmt.Errorf("record %q: %w", st.Name(), err)
	}
	if err := k.append(init, nil); err != nil {
		// An ownership already taken is found unused and forgotten by the next pass.
		_ = k.spool.Abort(r.base)
		k.ledger.close()
		idx.remove()
		r.release(key)
		return nil, err
	}
	r.active.Add(1)
	r.mu.Lock()
	r.sinks[k] = struct{}{}
	r.mu.Unlock()
	k.log.Info("recording started", "key", key)
	return k, nil
}

// deliver hands a finished recording to Recorded, retrying with backoff until it
// succeeds or the recorder stops.
func (r *Recorder) deliver(rec Recording) error {
	return r.retry("register recording", rec.Key, func(ctx context.Context) error { return r.cfg.Recorded(ctx, rec) })
}

// retry runs op on the recording key until it succeeds or the recorder stops, with
// backoff.
func (r *Recorder) retry(what, key string, op func(ctx context.Context) error) error {
	wait := 200 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(r.base, 10*time.Second)
		err := op(ctx)
		cancel()
		if err == nil {
			return nil
		}
		r.log.Warn(what+": failed; retrying", "key", key, "err", err, "retry_in", wait)
		select {
		case <-r.base.Done():
			return fmt.Errorf("%s %s: %w", what, key, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// take marks key as worked on by this process; false if it is already.
func (r *Recorder) take(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy[key] {
		return false
	}
	r.busy[key] = true
	return true
}

func (r *Recorder) release(key string) {
	r.mu.Lock()
	delete(r.busy, key)
	r.mu.Unlock()
}

// forget tells the ledger a recording is done with, retrying with backoff until it
// succeeds or the recorder stops (then the ownership stays, and whoever finds the
// recording next completes it again, which Recorded allows).
func (r *Recorder) forget(key string) bool {
	return r.retry("forget recording", key, func(ctx context.Context) error { return r.cfg.Ledger.Done(ctx, key) }) == nil
}

// sink records one stream.
type sink struct {
	r      *Recorder
	frag   *fragmenter
	spool  *storage.Spool
	ledger *ledgerWriter
	idx    *index
	log    *slog.Logger
	failed error // once writing failed, the recording stops growing but keeps what it has

	mu  sync.Mutex // guards rec.Fragments, which the ledger writer reads
	rec Recording
}

// within returns the fragments from number first on that end within end bytes.
func (k *sink) within(first int, end int64) []Fragment {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := first
	for n < len(k.rec.Fragments) && k.rec.Fragments[n].Offset+k.rec.Fragments[n].Size <= end {
		n++
	}
	if n <= first {
		return nil
	}
	return append([]Fragment(nil), k.rec.Fragments[first:n]...)
}

// append writes bytes to the spool, makes them durable, then records the fragment (when
// given) in the index: the index never points past durable bytes.
func (k *sink) append(b []byte, f *Fragment) error {
	if _, err := k.spool.Write(b); err != nil {
		return fmt.Errorf("record %s: spool: %w", k.rec.Key, err)
	}
	if err := k.spool.Sync(); err != nil {
		return fmt.Errorf("record %s: sync spool: %w", k.rec.Key, err)
	}
	k.rec.Size += int64(len(b))
	if f == nil {
		return nil
	}
	f.Offset = k.rec.Size - int64(len(b))
	if err := k.idx.add(*f); err != nil {
		return err
	}
	k.mu.Lock()
	k.rec.Fragments = append(k.rec.Fragments, *f)
	k.mu.Unlock()
	k.rec.Duration = f.Start + f.Duration
	return nil
}

func (k *sink) WriteAccessUnit(au *media.AccessUnit) error {
	if k.failed != nil {
		return nil
	}
	b, f, err := k.frag.write(au)
	if err == nil && f != nil {
		err = k.append(b, f)
	}
	if err != nil {
		k.failed = err
		k.log.Error("recording stopped growing; what was recorded is kept", "err", err)
		if k.r.cfg.Failed != nil {
			rec := k.rec
			rec.Fragments = nil
			k.r.cfg.Failed(rec, err, true)
		}
	}
	return nil
}

func (k *sink) Close(reason error) {
	defer k.r.active.Done()
	defer func() {
		k.r.mu.Lock()
		delete(k.r.sinks, k)
		delete(k.r.busy, k.rec.Key)
		k.r.mu.Unlock()
	}()
	defer k.ledger.close()
	if k.failed == nil {
		if b, f, err := k.frag.finish(); err != nil {
			k.log.Error("recording: last fragment lost", "err", err)
		} else if f != nil {
			if err := k.append(b, f); err != nil {
				k.log.Error("recording: last fragment lost", "err", err)
			}
		}
	}
	if len(k.rec.Fragments) == 0 {
		_ = k.spool.Abort(k.r.base)
		k.ledger.close()
		k.r.forget(k.rec.Key)
		k.idx.remove()
		k.log.Info("recording dropped: nothing recorded")
		return
	}
	// Close waits for the store as long as the recorder lives: an outage only delays the
	// replay. If the process stops first, the spool stays for recovery.
	if err := k.spool.Close(k.r.base); err != nil {
		k.log.Warn("recording not completed; it will be at next start", "err", err)
		return
	}
	k.ledger.close()
	k.rec.EndedAt = k.rec.StartedAt.Add(k.rec.Duration)
	if err := k.r.deliver(k.rec); err != nil || !k.r.forget(k.rec.Key) {
		return // the index stays; the next start delivers it
	}
	k.idx.remove()
	k.log.Info("recording complete", "key", k.rec.Key, "bytes", k.rec.Size,
		"duration", k.rec.Duration.Round(time.Millisecond), "fragments", len(k.rec.Fragments), "stream_end", errString(reason))
}

func errString(err error) string {
	if err == nil {
		return "publisher left"
	}
	return err.Error()
}
