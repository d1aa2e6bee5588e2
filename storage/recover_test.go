package storage_test

import (
	"bytes"
	"context"
	"encoding/json"
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
	for _, k := range []string{"recordings/r/old1/video.mp4", "recordings/r/old2/video.mp4", "other/upload"} {
		if _, err := st.CreateUpload(ctx, k, ""); err != nil {
			t.Fatal(err)
		}
	}
	keep, err := storage.ClaimedUploads(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := storage.AbortDanglingUploads(ctx, st, storage.RecordingsPrefix, keep, logger(t))
	if err != nil || n != 2 {
		t.Fatalf("aborted %d, %v; want 2", n, err)
	}
	ups, err := st.ListUploads(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, u := range ups {
		left = append(left, u.Key)
		if u.Key == "recordings/r/claimed/video.mp4" && u.UploadID != claimedID {
			t.Fatalf("claimed upload %+v, spool has %s", u, claimedID)
		}
	}
	slices.Sort(left)
	if want := []string{"other/upload", "recordings/r/claimed/video.mp4"}; !slices.Equal(left, want) {
		t.Fatalf("uploads left: %q, want %q", left, want)
	}
}
