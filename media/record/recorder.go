// Package record keeps live streams as fragmented MP4 recordings in object storage. A
// recording is the run's own fMP4 log (media/fmp4), which HLS writes: each chunk of it
// goes to the store as an object of its own as soon as it is sealed (readable at once,
// for "from the start"), and when the run ends the recording is assembled in the store
// from those objects and the last chunk. Nothing is written twice on disk, and the live
// path never waits on the network.
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
	"onair/media/fmp4"
	"onair/media/hls"
	"onair/storage"
)

// holdRecord is the recorder's name among the holders of a log's chunks.
const holdRecord = "record"

// Config configures a Recorder.
type Config struct {
	Logger *slog.Logger
	Store  storage.Store
	// Dir holds the runs' logs (hls.Config.Dir): recordings a crash left there are
	// recovered from it. It must survive restarts.
	Dir string
	// MaxDisk bounds the bytes of a recording's log waiting on disk for the store (1 GiB
	// when 0): past it, during a long outage, the recording stops growing and the live
	// stream goes on.
	MaxDisk int64
	// Recorded is told about every finished recording, including those completed after a
	// crash or adopted from a lost node. It is retried until it succeeds, so it must be
	// idempotent.
	Recorded func(ctx context.Context, rec Recording) error
	// Ledger owns each recording for this node and keeps the chunks the store holds,
	// where the other nodes find them.
	Ledger Ledger
	// AdoptEvery is how often the recorder asks the Ledger for recordings to adopt and
	// retries recovering what its disk holds (default 30 s).
	AdoptEvery time.Duration
	// Retry paces the retries of store operations (100 ms to 10 s when zero).
	Retry storage.Retrier
	// Failed, when set, is told when a stream that asked to be recorded is not (partial
	// false: its recording could not start) or stops being recorded before its end
	// (partial: what was recorded is kept, and goes through Recorded). It must return
	// quickly.
	Failed func(rec Recording, err error, partial bool)
}

// Recorder is an hls.Archive: it keeps every run whose route asks for it as a recording.
type Recorder struct {
	cfg Config
	log *slog.Logger

	base   context.Context // recordings live as long as this; cancelling it freezes them for recovery
	cancel context.CancelFunc
	active sync.WaitGroup

	mu   sync.Mutex
	runs map[*keptRun]struct{}
	busy map[string]bool // keys this process works on: recording, recovering, adopting
}

var _ hls.Archive = (*Recorder)(nil)

// New checks cfg.
func New(cfg Config) (*Recorder, error) {
	if cfg.Store == nil || cfg.Dir == "" || cfg.Recorded == nil || cfg.Ledger == nil {
		return nil, errors.New("record: Store, Dir, Recorded and Ledger are required")
	}
	if cfg.AdoptEvery <= 0 {
		cfg.AdoptEvery = 30 * time.Second
	}
	if cfg.MaxDisk <= 0 {
		cfg.MaxDisk = 1 << 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Retry.Logger = cfg.Logger
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("record: create %s: %w", cfg.Dir, err)
	}
	r := &Recorder{cfg: cfg, log: cfg.Logger.With("component", "record"),
		runs: map[*keptRun]struct{}{}, busy: map[string]bool{}}
	r.base, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// Run adopts the recordings of lost nodes and retries recovering what the disk holds, at
// once and every AdoptEvery, until ctx ends; then it gives recordings still finishing
// until finishBy to complete; whatever is left stays on disk and is completed at next
// start (or, if this node does not come back in time, by another).
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
	PartsPending int // chunks
}

// Backlog sums the recordings in progress.
func (r *Recorder) Backlog() Backlog {
	r.mu.Lock()
	runs := make([]*keptRun, 0, len(r.runs))
	for k := range r.runs {
		runs = append(runs, k)
	}
	r.mu.Unlock()
	b := Backlog{Recordings: len(runs)}
	for _, k := range runs {
		bytes, chunks := k.backlog()
		b.BytesPending += bytes
		b.PartsPending += chunks
	}
	return b
}

// Keep implements hls.Archive: it records the runs whose route asks for it.
func (r *Recorder) Keep(st *media.Stream, log *fmp4.Log) (hls.Kept, error) {
	if !st.Route().Record {
		return nil, nil
	}
	k, err := r.keep(st, log)
	if err != nil && r.cfg.Failed != nil {
		r.cfg.Failed(Recording{StreamName: st.Name(), StreamID: st.ID(), RoomID: st.Route().RoomID, StartedAt: st.StartedAt()}, err, false)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (r *Recorder) keep(st *media.Stream, log *fmp4.Log) (*keptRun, error) {
	route := st.Route()
	room := route.RoomID
	if room == "" {
		room = route.Name
	}
	key, err := storage.RecordingKey(room, st.ID(), "recording.mp4")
	if err != nil {
		return nil, fmt.Errorf("record %q: %w", st.Name(), err)
	}
	rec := Recording{
		StreamName: st.Name(), StreamID: st.ID(), RoomID: route.RoomID, Key: key,
		ContentType: "video/mp4", InitSize: log.InitSize(),
		VideoCodec: string(st.VideoCodec()), AudioCodec: string(st.AudioCodec()),
		StartedAt: st.StartedAt(),
	}
	if v := st.Tracks().Video; v != nil {
		rec.Width, rec.Height = v.Width, v.Height
	}
	if !r.take(key) {
		return nil, fmt.Errorf("record %q: %s is being recorded already", st.Name(), key)
	}
	if err := writeMarker(log.Dir(), rec); err != nil {
		r.release(key)
		return nil, err
	}
	k := r.startRun(rec, log, log.Dir())
	k.log.Info("recording started", "key", key)
	return k, nil
}

// Owns implements hls.Archive: a log directory with the recorder's marker is a recording.
func (r *Recorder) Owns(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, markerName))
	return err == nil
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

// finish completes a recording from its sources (the chunks in the store, and what is
// left on disk in dir, "" for an adopted one), registers it and removes its chunks from
// the store. It reports whether all of that is done; if not, the recording is left for
// the next attempt.
func (r *Recorder) finish(rec Recording, dir string, sources []storage.Source, chunks []StoredChunk) bool {
	log := r.log.With("key", rec.Key)
	if len(rec.Segments) == 0 {
		log.Info("recording dropped: nothing recorded")
		r.deleteChunks(rec.Key, chunks)
		return r.forget(rec.Key)
	}
	if obj, err := r.cfg.Store.Head(r.base, rec.Key); err == nil && obj.Size == rec.Size {
		log.Info("recording already assembled: a run of this finish stopped before the end")
	} else if err := storage.Assemble(r.base, storage.Assembly{Store: r.cfg.Store, Key: rec.Key,
		ContentType: rec.ContentType, Sources: sources, Retry: r.cfg.Retry}); err != nil {
		log.Warn("recording not assembled yet; it will be later", "err", err)
		return false
	}
	if err := r.deliver(rec); err != nil {
		return false
	}
	// Registered, the log is no recording any more, only HLS's until its grace period
	// ends: left marked, the next pass over the disk would complete it again, and bring
	// back a recording its owner has deleted since.
	if dir != "" {
		if err := os.Remove(filepath.Join(dir, markerName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Error("record: a complete recording's log still marked as a recording", "dir", dir, "err", err)
		}
	}
	r.deleteChunks(rec.Key, chunks)
	if !r.forget(rec.Key) {
		return false
	}
	log.Info("recording complete", "bytes", rec.Size, "duration", rec.Duration.Round(time.Millisecond),
		"segments", len(rec.Segments), "chunks", len(sources), "recovered", rec.Recovered)
	return true
}

// deleteChunks removes the chunk objects a recording was assembled from. One that
// cannot be deleted now is left for the dangling sweep.
func (r *Recorder) deleteChunks(key string, chunks []StoredChunk) {
	for _, c := range chunks {
		ck := storage.ChunkKey(key, c.N)
		err := r.cfg.Retry.Do(r.base, "delete "+ck, func(ctx context.Context) error { return r.cfg.Store.Delete(ctx, ck) })
		if err != nil {
			r.log.Warn("chunk of a complete recording left in the store", "key", ck, "err", err)
		}
	}
}

// withSegments fills rec's index, size and duration from the chunks it is made of.
func withSegments(rec Recording, chunks []StoredChunk) Recording {
	rec.Segments = nil
	rec.Size = rec.InitSize
	for _, c := range chunks {
		rec.Segments = append(rec.Segments, c.Segments...)
		rec.Size = c.Start + c.Size
	}
	rec.Duration = 0
	if n := len(rec.Segments); n > 0 {
		first, last := rec.Segments[0], rec.Segments[n-1]
		rec.Duration = last.Start + last.Duration - first.Start
	}
	rec.EndedAt = rec.StartedAt.Add(rec.Duration)
	return rec
}

// storedChunk is a chunk of the log as the recording indexes it.
func storedChunk(c fmp4.Chunk) StoredChunk {
	sc := StoredChunk{N: c.N, Start: c.Start, Size: c.Size}
	for _, s := range c.Segments {
		sc.Segments = append(sc.Segments, Segment{Offset: s.Offset, Size: s.Size(), Start: s.Start, Duration: s.Duration, Key: s.Independent})
	}
	return sc
}
