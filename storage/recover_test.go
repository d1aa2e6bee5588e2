package storage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"onair/scripts/testenv"
	"onair/storage"
	"onair/storage/storagetest"
)

func recoverAll(t *testing.T, dir string, st storage.Store, truncate func(string, int64) int64) []storage.Recovered {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs, err := storage.RecoverSpools(ctx, dir, st, truncate, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Err != nil {
			t.Fatalf("recover %s: %v", r.Key, r.Err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("spool directories left after recovery: %v", entries)
	}
	return recs
}

func waitParts(t *testing.T, sp *storage.Spool, n int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		return sp.Stats().PartsUploaded == n, "parts not uploaded yet"
	})
}

func TestRecoverKeepsWhatWasSynced(t *testing.T) {
	_, st := newS3(t)
	dir := t.TempDir()
	key := "recordings/studio/c1/video.mp4"
	sp, crash := openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: key})
	w := newWriter(t, sp)
	w.fragments(13<<20, true)
	waitParts(t, sp, 2)
	w.fragments(100<<10, false) // a fragment being written when the process died
	crash()

	recs := recoverAll(t, dir, st, nil)
	if len(recs) != 1 || recs[0].Key != key || recs[0].Found != int64(len(w.data)) || recs[0].Size != w.synced {
		t.Fatalf("recovered %+v; wrote %d, synced %d", recs, len(w.data), w.synced)
	}
	checkObject(t, st, key, w.data[:w.synced])
	noUploadsLeft(t, st)
}

func TestRecoverPartUploadedBeforeManifest(t *testing.T) {
	_, real := newS3(t)
	st := &countingStore{Store: real}
	dir := t.TempDir()
	key := "recordings/studio/c2/video.mp4"
	sp, crash := openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: key})
	w := newWriter(t, sp)
	w.fragments(2*partSize+1000, true)
	waitParts(t, sp, 2)
	// Part 3's chunk fills up but is not synced, so the spool does not upload it...
	w.fragments(partSize+(1<<20), false)
	crash()
	// ...and the "crash" comes right after it was uploaded, before the manifest said so.
	sdir := storage.SpoolDir(sp)
	var m struct {
		UploadID string `json:"uploadId"`
		Parts    []any  `json:"parts"`
	}
	b, err := os.ReadFile(filepath.Join(sdir, "manifest.json"))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil || m.UploadID == "" || len(m.Parts) != 2 {
		t.Fatalf("manifest %s: %v", b, err)
	}
	chunk, err := os.ReadFile(filepath.Join(sdir, "part-00003"))
	if err != nil || len(chunk) != partSize {
		t.Fatalf("chunk 3: %d bytes, %v", len(chunk), err)
	}
	if _, err := real.UploadPart(context.Background(), key, m.UploadID, 3, bytes.NewReader(chunk), int64(len(chunk))); err != nil {
		t.Fatal(err)
	}

	st.parts = nil
	recs := recoverAll(t, dir, st, func(k string, found int64) int64 { return found })
	if recs[0].Size != int64(len(w.data)) {
		t.Fatalf("recovered %+v, wrote %d", recs, len(w.data))
	}
	checkObject(t, real, key, w.data)
	// ListParts told recovery that part 3 was there: only the tail went up again.
	if !slices.Equal(st.parts, []int{4}) {
		t.Fatalf("recovery uploaded parts %v, want [4]", st.parts)
	}
}

func TestRecoverCutsTornTail(t *testing.T) {
	_, st := newS3(t)
	dir := t.TempDir()
	key := "recordings/studio/c3/video.mp4"
	sp, crash := openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: key})
	data := storagetest.Data(3, 12<<20)
	if _, err := sp.Write(data[:6<<20]); err != nil {
		t.Fatal(err)
	}
	if err := sp.Sync(); err != nil {
		t.Fatal(err)
	}
	waitParts(t, sp, 1)
	if _, err := sp.Write(data[6<<20:]); err != nil {
		t.Fatal(err)
	}
	crash()
	// The recorder's fragment index says its last complete fragment ends at 7 MiB: the cut
	// falls inside chunk 2 while chunk 3 exists too.
	var asked int64
	recs := recoverAll(t, dir, st, func(k string, found int64) int64 {
		if k == key {
			asked = found
		}
		return 7 << 20
	})
	if asked != int64(len(data)) || recs[0].Size != 7<<20 {
		t.Fatalf("truncate asked with %d, recovered %+v", asked, recs)
	}
	checkObject(t, st, key, data[:7<<20])

	// A cut inside a part already uploaded cannot be made: that part is kept whole.
	key2 := "recordings/studio/c4/video.mp4"
	sp, crash = openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: key2})
	if _, err := sp.Write(data[:6<<20]); err != nil {
		t.Fatal(err)
	}
	if err := sp.Sync(); err != nil {
		t.Fatal(err)
	}
	waitParts(t, sp, 1)
	crash()
	recoverAll(t, dir, st, func(string, int64) int64 { return 1 << 20 })
	checkObject(t, st, key2, data[:partSize])

	// Nothing worth keeping: no object, no upload left.
	key3 := "recordings/studio/c5/video.mp4"
	sp, crash = openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: key3})
	if _, err := sp.Write(data[:1000]); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() (bool, string) { return storage.SpoolUploadID(sp) != "", "no upload yet" })
	crash()
	recs = recoverAll(t, dir, st, nil) // nothing was synced
	if recs[0].Size != 0 {
		t.Fatalf("recovered %+v", recs)
	}
	if _, err := st.Head(context.Background(), key3); err == nil {
		t.Fatal("an object was made of nothing")
	}
	noUploadsLeft(t, st)
}

func TestRecoverWithoutUpload(t *testing.T) {
	srv, st := newS3(t)
	srv.Kill()
	dir := t.TempDir()
	key := "recordings/studio/c6/video.mp4"
	sp, crash := openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: key})
	w := newWriter(t, sp)
	w.fragments(7<<20, true)
	crash()
	srv.Restart(t)
	recs := recoverAll(t, dir, st, nil)
	if recs[0].Size != int64(len(w.data)) {
		t.Fatalf("recovered %+v", recs)
	}
	checkObject(t, st, key, w.data)
}

func TestAbortDanglingUploads(t *testing.T) {
	_, st := newS3(t)
	ctx := context.Background()
	dir := t.TempDir()
	// A spool left by a crash whose recovery failed still claims its upload.
	sp, crash := openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: "recordings/r/claimed/video.mp4"})
	testenv.Eventually(t, 30*time.Second, func() (bool, string) { return storage.SpoolUploadID(sp) != "", "no upload yet" })
	crash()
	claimedID := storage.SpoolUploadID(sp)
	for _, k := range []string{"recordings/r/leased/video.mp4", "recordings/r/old1/video.mp4", "recordings/r/old2/video.mp4", "other/upload"} {
		if _, err := st.CreateUpload(ctx, k, ""); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := storage.ClaimedUploads(dir)
	if err != nil {
		t.Fatal(err)
	}
	// What a node's leases account for: another node's live recording.
	keep := func(_ context.Context, u storage.PendingUpload) (bool, error) {
		return claimed(u.Key, u.UploadID) || u.Key == "recordings/r/leased/video.mp4", nil
	}
	left := func() []string {
		ups, err := st.ListUploads(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, u := range ups {
			keys = append(keys, u.Key)
			if u.Key == "recordings/r/claimed/video.mp4" && u.UploadID != claimedID {
				t.Fatalf("claimed upload %+v, spool has %s", u, claimedID)
			}
		}
		slices.Sort(keys)
		return keys
	}
	all := []string{"other/upload", "recordings/r/claimed/video.mp4", "recordings/r/leased/video.mp4",
		"recordings/r/old1/video.mp4", "recordings/r/old2/video.mp4"}
	for _, c := range []struct {
		name    string
		now     time.Time
		aborted int
		left    []string
	}{
		{"young uploads nobody accounts for are spared", time.Now(), 0, all},
		{"old ones are aborted, never those accounted for", time.Now().Add(storage.DanglingAge + time.Hour), 2,
			[]string{"other/upload", "recordings/r/claimed/video.mp4", "recordings/r/leased/video.mp4"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := storage.AbortDanglingUploads(ctx, storage.DanglingConfig{Store: st, Prefix: storage.RecordingsPrefix,
				Keep: keep, OlderThan: storage.DanglingAge, Now: func() time.Time { return c.now }, Logger: logger(t)})
			if err != nil || n != c.aborted {
				t.Fatalf("aborted %d, %v; want %d", n, err, c.aborted)
			}
			if got := left(); !slices.Equal(got, c.left) {
				t.Fatalf("uploads left: %q, want %q", got, c.left)
			}
		})
	}
	// An error accounting for an upload aborts nothing.
	failing := func(context.Context, storage.PendingUpload) (bool, error) { return false, errors.New("database away") }
	if n, err := storage.AbortDanglingUploads(ctx, storage.DanglingConfig{Store: st, Prefix: storage.RecordingsPrefix, Keep: failing,
		Logger: logger(t)}); err == nil || n != 0 {
		t.Fatalf("aborted %d, %v with Keep failing", n, err)
	}
}

// A node came back with its spool after another node completed its upload from the parts
// in the store: the spool is dropped, the other node's object stays.
func TestRecoverSpoolCompletedElsewhere(t *testing.T) {
	_, st := newS3(t)
	ctx := context.Background()
	dir := t.TempDir()
	key := "recordings/studio/c7/video.mp4"
	sp, crash := openSpool(t, storage.SpoolConfig{Dir: dir, Store: st, Key: key})
	w := newWriter(t, sp)
	w.fragments(2*partSize+(1<<20), true)
	waitParts(t, sp, 2)
	crash()
	ups, err := st.ListUploads(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	done, err := storage.CompleteStored(ctx, storage.Adoption{Store: st, Key: key, Uploads: ups,
		Keep: func(found int64) int64 { return found }, Logger: logger(t)})
	if err != nil || done.Size != 2*partSize {
		t.Fatalf("adopted %+v, %v", done, err)
	}
	// A directory a crash left before its manifest holds nothing: pruned, unlike spools.
	shell := filepath.Join(dir, "0123456789abcdef0123456789abcdef")
	if err := os.Mkdir(shell, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := storage.PruneSpools(dir, logger(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(shell); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty spool directory left: %v", err)
	}
	if spools, err := storage.ListSpools(dir); err != nil || len(spools) != 1 || spools[0].Key != key {
		t.Fatalf("ListSpools = %+v, %v", spools, err)
	}

	rec, ok := storage.RecoverSpool(ctx, storage.SpoolRecovery{Dir: dir, Store: st, Key: key, Logger: logger(t)})
	if !ok || rec.Err != nil || !rec.Elsewhere {
		t.Fatalf("RecoverSpool = %+v, %v", rec, ok)
	}
	checkObject(t, st, key, w.data[:2*partSize])
	if spools, _ := storage.ListSpools(dir); len(spools) != 0 {
		t.Fatalf("spools left: %+v", spools)
	}
	if _, ok := storage.RecoverSpool(ctx, storage.SpoolRecovery{Dir: dir, Store: st, Key: key}); ok {
		t.Fatal("RecoverSpool found a spool after dropping it")
	}
}
