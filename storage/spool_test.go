package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"onair/scripts/testenv"
	"onair/storage"
	"onair/storage/s3"
	"onair/storage/storagetest"
)

const partSize = storage.MinPartSize // the smallest S3 allows keeps the tests quick

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newS3 starts MinIO and returns a store on a fresh bucket.
func newS3(t *testing.T) (*testenv.S3, *s3.Store) {
	t.Helper()
	srv := testenv.StartS3(t)
	st, err := s3.New(context.Background(), s3.Config{Endpoint: srv.Endpoint, Bucket: "onair",
		PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Logger: logger(t),
		// One attempt per call: the spool's own retries are what is under test.
		MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	// MinIO may still answer 503 for a moment after it reports ready.
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		err := st.EnsureBucket(context.Background())
		return err == nil, fmt.Sprint(err)
	})
	return srv, st
}

// openSpool opens a spool whose "process" dies (context cancelled) at the end of the
// test at the latest, and returns the function that kills it earlier.
func openSpool(t *testing.T, cfg storage.SpoolConfig) (*storage.Spool, func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = logger(t)
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = partSize
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	sp, err := storage.OpenSpool(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	crash := func() {
		cancel()
		<-storage.SpoolDone(sp)
	}
	t.Cleanup(crash)
	return sp, crash
}

// writer feeds a spool like the recorder: fragments of varied size, Sync after each.
type writer struct {
	t      *testing.T
	sp     *storage.Spool
	rng    *rand.Rand
	data   []byte // everything accepted
	synced int64
	slow   time.Duration // the longest Write+Sync
}

func newWriter(t *testing.T, sp *storage.Spool) *writer {
	return &writer{t: t, sp: sp, rng: rand.New(rand.NewPCG(1, 2))}
}

// fragments writes about n bytes in fragments of 1 KiB to 200 KiB, each in a few small
// writes, syncing after each fragment when sync is set.
func (w *writer) fragments(n int, sync bool) {
	w.t.Helper()
	for target := len(w.data) + n; len(w.data) < target; {
		frag := storagetest.Data(w.rng.Uint64(), min(1024+w.rng.IntN(200<<10), target-len(w.data)))
		start := time.Now()
		for len(frag) > 0 {
			k := min(len(frag), 1+w.rng.IntN(16<<10))
			if _, err := w.sp.Write(frag[:k]); err != nil {
				w.t.Fatalf("write at %d: %v", len(w.data), err)
			}
			w.data, frag = append(w.data, frag[:k]...), frag[k:]
		}
		if sync {
			if err := w.sp.Sync(); err != nil {
				w.t.Fatalf("sync at %d: %v", len(w.data), err)
			}
			w.synced = int64(len(w.data))
		}
		w.slow = max(w.slow, time.Since(start))
	}
}

func closeSpool(t *testing.T, sp *storage.Spool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sp.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func checkObject(t *testing.T, st storage.Store, key string, want []byte) {
	t.Helper()
	got := storagetest.ReadAll(t, st, key)
	if !bytes.Equal(got, want) {
		n := 0
		for n < min(len(got), len(want)) && got[n] == want[n] {
			n++
		}
		t.Fatalf("%s: %d bytes, want %d; first difference at %d", key, len(got), len(want), n)
	}
}

func noUploadsLeft(t *testing.T, st storage.Store) {
	t.Helper()
	ups, err := st.ListUploads(context.Background(), "")
	if err != nil || len(ups) != 0 {
		t.Fatalf("uploads left: %+v %v", ups, err)
	}
}

func TestSpoolWritesObject(t *testing.T) {
	_, st := newS3(t)
	dir := t.TempDir()
	key := "recordings/studio/b1/video.mp4"
	sp, _ := openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: key, ContentType: "video/mp4"})
	w := newWriter(t, sp)
	w.fragments(20<<20, true)
	// Parts go up while the recording runs, not at the end.
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		s := sp.Stats()
		return s.PartsUploaded == 4 && s.PartsPending == 1, fmt.Sprintf("stats %+v", s)
	})
	s := sp.Stats()
	if s.Written != int64(len(w.data)) || s.Synced != s.Written || s.Uploaded != 4*partSize ||
		s.Pending != s.Written-s.Uploaded || s.PartsPending != 1 || s.LastError != nil {
		t.Fatalf("stats before close: %+v", s)
	}
	closeSpool(t, sp)
	checkObject(t, st, key, w.data)
	if obj, err := st.Head(context.Background(), key); err != nil || obj.ContentType != "video/mp4" {
		t.Fatalf("head: %+v %v", obj, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("spool directory left after close: %v", entries)
	}
	noUploadsLeft(t, st)
	if _, err := sp.Write([]byte("x")); !errors.Is(err, storage.ErrSpoolClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestSpoolSurvivesOutage(t *testing.T) {
	srv, st := newS3(t)
	key := "recordings/studio/b2/video.mp4"
	sp, _ := openSpool(t, storage.SpoolConfig{Dir: t.TempDir(), Store: st, Key: key})
	w := newWriter(t, sp)
	w.fragments(6<<20, true)
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		return sp.Stats().PartsUploaded == 1, fmt.Sprintf("stats %+v", sp.Stats())
	})

	srv.Kill()
	down := time.Now()
	w.fragments(16<<20, true) // written while S3 is away
	// Several seconds of outage, long enough for the uploader to fail and back off.
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		s := sp.Stats()
		return time.Since(down) > 5*time.Second && s.LastError != nil, fmt.Sprintf("stats %+v", s)
	})
	s := sp.Stats()
	if s.PartsUploaded != 1 || s.Pending != s.Written-partSize || s.Pending < 16<<20 {
		t.Fatalf("during the outage the bytes must wait on disk: %+v", s)
	}
	if w.slow > 2*time.Second {
		t.Fatalf("a write waited %s during the outage", w.slow)
	}
	t.Logf("outage: %d bytes pending on disk, last error: %v, slowest write+sync %s", s.Pending, s.LastError, w.slow)

	srv.Restart(t)
	w.fragments(1<<20, true)
	closeSpool(t, sp)
	checkObject(t, st, key, w.data)
	noUploadsLeft(t, st)
}

func TestSpoolStoreDownAtOpen(t *testing.T) {
	srv, st := newS3(t)
	srv.Kill()
	key := "recordings/studio/b3/video.mp4"
	sp, _ := openSpool(t, storage.SpoolConfig{Dir: t.TempDir(), Store: st, Key: key})
	w := newWriter(t, sp)
	w.fragments(12<<20, true)
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		return sp.Stats().LastError != nil, "CreateUpload has not failed yet"
	})
	if id := storage.SpoolUploadID(sp); id != "" {
		t.Fatalf("upload created with S3 down: %q", id)
	}
	srv.Restart(t)
	closeSpool(t, sp)
	checkObject(t, st, key, w.data)
}

func TestSpoolFull(t *testing.T) {
	_, st := newS3(t)
	key := "recordings/studio/b4/video.mp4"
	sp, _ := openSpool(t, storage.SpoolConfig{Dir: t.TempDir(), Store: st, Key: key, MaxDisk: 2 * partSize})
	w := newWriter(t, sp)
	// Unsynced bytes are never uploaded, so the disk fills up.
	w.fragments(2*partSize-100, false)
	n, err := sp.Write(make([]byte, 200))
	if !errors.Is(err, storage.ErrSpoolFull) || n != 0 {
		t.Fatalf("write past MaxDisk: %d, %v; want 0, ErrSpoolFull", n, err)
	}
	if s := sp.Stats(); s.Written != int64(len(w.data)) {
		t.Fatalf("the refused write was partly kept: %+v", s)
	}
	// Once parts are uploaded there is room again.
	if err := sp.Sync(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		return sp.Stats().Pending < partSize, fmt.Sprintf("stats %+v", sp.Stats())
	})
	w.fragments(1<<20, true)
	closeSpool(t, sp)
	checkObject(t, st, key, w.data)
}

func TestSpoolEdges(t *testing.T) {
	_, st := newS3(t)
	dir := t.TempDir()
	ctx := context.Background()

	// Nothing written: an empty object, not a failed upload.
	sp, _ := openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: "recordings/r/empty/video.mp4"})
	closeSpool(t, sp)
	checkObject(t, st, "recordings/r/empty/video.mp4", nil)

	// Exactly one full part: the empty chunk after it is no part.
	sp, _ = openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: "recordings/r/exact/video.mp4"})
	data := storagetest.Data(1, partSize)
	if _, err := sp.Write(data); err != nil {
		t.Fatal(err)
	}
	closeSpool(t, sp)
	checkObject(t, st, "recordings/r/exact/video.mp4", data)

	// One spool per key at a time.
	sp, _ = openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: "recordings/r/abort/video.mp4"})
	if _, err := storage.OpenSpool(ctx, storage.SpoolConfig{Dir: dir, Store: st, Key: "recordings/r/abort/video.mp4"}); !errors.Is(err, storage.ErrSpoolExists) {
		t.Fatalf("second spool for a key: %v", err)
	}
	// Abort leaves nothing behind.
	if _, err := sp.Write(storagetest.Data(2, 1000)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		return storage.SpoolUploadID(sp) != "", "no upload yet"
	})
	if err := sp.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Head(ctx, "recordings/r/abort/video.mp4"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("aborted object exists: %v", err)
	}
	noUploadsLeft(t, st)
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("spool directories left: %v", entries)
	}

	for _, cfg := range []storage.SpoolConfig{
		{Dir: dir, Store: st, Key: "../x"},
		{Dir: dir, Store: st, Key: "k", PartSize: 1 << 20},
		{Dir: dir, Store: st, Key: "k", MaxDisk: partSize},
		{Dir: "", Store: st, Key: "k"},
	} {
		if _, err := storage.OpenSpool(ctx, cfg); err == nil {
			t.Fatalf("OpenSpool accepted %+v", cfg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "k")); err == nil {
		t.Fatal("refused spool left a directory")
	}
}

// countingStore is the real store, counting the parts uploaded through it.
type countingStore struct {
	storage.Store
	mu    sync.Mutex
	parts []int
}

func (c *countingStore) UploadPart(ctx context.Context, key, id string, n int, body io.ReadSeeker, size int64) (storage.Part, error) {
	c.mu.Lock()
	c.parts = append(c.parts, n)
	c.mu.Unlock()
	return c.Store.UploadPart(ctx, key, id, n, body, size)
}

// The spool lets its owner take the key before the upload exists, and tells it what the
// store holds after each part.
func TestSpoolTellsItsOwner(t *testing.T) {
	_, st := newS3(t)
	key := "recordings/studio/b5/video.mp4"
	var mu sync.Mutex
	var seen []storage.SpoolProgress
	prepared := 0
	sp, _ := openSpool(t, storage.SpoolConfig{Dir: t.TempDir(), Store: st, Key: key,
		BeforeUpload: func(ctx context.Context) error {
			ups, err := st.ListUploads(ctx, key)
			if err != nil || len(ups) != 0 {
				t.Errorf("before the upload: uploads %+v, %v", ups, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if prepared++; prepared < 3 {
				return errors.New("the database is away")
			}
			return nil
		},
		Progress: func(p storage.SpoolProgress) {
			mu.Lock()
			seen = append(seen, p)
			mu.Unlock()
		}, RetryMin: 10 * time.Millisecond})
	w := newWriter(t, sp)
	w.fragments(2*partSize+(1<<20), true)
	waitParts(t, sp, 2)
	closeSpool(t, sp)
	checkObject(t, st, key, w.data)

	mu.Lock()
	defer mu.Unlock()
	id := seen[0].UploadID
	want := []storage.SpoolProgress{{id, 0, 0}, {id, 1, partSize}, {id, 2, 2 * partSize}, {id, 3, int64(len(w.data))}}
	if prepared != 3 || id == "" || !slices.Equal(seen, want) {
		t.Fatalf("prepared %d times; progress %+v, want %+v", prepared, seen, want)
	}
}
