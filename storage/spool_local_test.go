package storage_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"onair/storage"
	"onair/storage/local"
)

// The local directory is the store of `make run`: the recorder's spool works on it the same.

func newLocal(t *testing.T) *local.Store {
	t.Helper()
	st, err := local.New(local.Config{Root: t.TempDir(), Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestSpoolOnLocalStore(t *testing.T) {
	st := newLocal(t)
	dir := t.TempDir()
	sp, _ := openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: "recordings/r/l1/video.mp4", ContentType: "video/mp4"})
	w := newWriter(t, sp)
	w.fragments(11<<20, true)
	closeSpool(t, sp)
	checkObject(t, st, "recordings/r/l1/video.mp4", w.data)

	sp, crash := openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: "recordings/r/l2/video.mp4"})
	w = newWriter(t, sp)
	w.fragments(7<<20, true)
	waitParts(t, sp, 1)
	w.fragments(1<<20, false)
	crash()
	recoverAll(t, dir, st, nil)
	checkObject(t, st, "recordings/r/l2/video.mp4", w.data[:w.synced])
	noUploadsLeft(t, st)
}

// lostReply completes uploads on the real store, then fails as if the answer never came.
type lostReply struct {
	storage.Store
	hang bool // instead of failing, wait until the caller gives up (the process dies)
}

func (l *lostReply) CompleteUpload(ctx context.Context, key, id string, parts []storage.Part) error {
	if err := l.Store.CompleteUpload(ctx, key, id, parts); err != nil {
		return err
	}
	if l.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return fmt.Errorf("connection reset: %w", storage.ErrUnavailable)
}

func TestSpoolCompleteWhoseReplyWasLost(t *testing.T) {
	st := newLocal(t)
	dir := t.TempDir()
	key := "recordings/r/l3/video.mp4"
	sp, _ := openSpool(t, storage.SpoolConfig{Dir: dir, Store: &lostReply{Store: st}, Key: key, RetryMin: time.Millisecond})
	w := newWriter(t, sp)
	w.fragments(6<<20, true)
	// The retry finds the upload gone and the object complete: that is success.
	closeSpool(t, sp)
	checkObject(t, st, key, w.data)

	// A crash while completing: recovery finds the object there and just cleans up.
	key = "recordings/r/l4/video.mp4"
	sp, _ = openSpool(t, storage.SpoolConfig{Dir: dir, Store: &lostReply{Store: st, hang: true}, Key: key})
	w = newWriter(t, sp)
	w.fragments(6<<20, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := sp.Close(ctx); err == nil {
		t.Fatal("close returned nil while completing hung")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("spool directory not left for recovery: %v", entries)
	}
	recs := recoverAll(t, dir, st, nil)
	if len(recs) != 1 || recs[0].Size != int64(len(w.data)) {
		t.Fatalf("recovered %+v", recs)
	}
	checkObject(t, st, key, w.data)
}
