package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"onair/storage"
	"onair/storage/local"
	"onair/storage/storagetest"
)

func newLocal(t *testing.T) storage.Store {
	t.Helper()
	st, err := local.New(local.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestAssemble(t *testing.T) {
	ctx := context.Background()
	st := newLocal(t)
	chunks := [][]byte{storagetest.Data(1, 5<<20), storagetest.Data(2, 5<<20+10)}
	var sources []storage.Source
	for i, b := range chunks {
		key := storage.ChunkKey("recordings/r/b/recording.mp4", i+1)
		if err := st.Put(ctx, key, bytes.NewReader(b), int64(len(b)), ""); err != nil {
			t.Fatal(err)
		}
		sources = append(sources, storage.Source{Object: key})
	}
	last := storagetest.Data(3, 777)
	sources = append(sources, storage.Source{Body: bytes.NewReader(last), Size: int64(len(last))})
	if err := storage.Assemble(ctx, storage.Assembly{Store: st, Key: "recordings/r/b/recording.mp4", ContentType: "video/mp4", Sources: sources}); err != nil {
		t.Fatal(err)
	}
	if got := storagetest.ReadAll(t, st, "recordings/r/b/recording.mp4"); !bytes.Equal(got, bytes.Join(append(chunks, last), nil)) {
		t.Fatalf("assembled %d bytes", len(got))
	}
	// One local source is one put.
	if err := storage.Assemble(ctx, storage.Assembly{Store: st, Key: "recordings/r/c/recording.mp4",
		Sources: []storage.Source{{Body: bytes.NewReader(last), Size: int64(len(last))}}}); err != nil {
		t.Fatal(err)
	}
	if ups, _ := st.ListUploads(ctx, storage.RecordingsPrefix); len(ups) != 0 {
		t.Fatalf("uploads left: %v", ups)
	}
	// A missing source fails at once and leaves no upload behind.
	err := storage.Assemble(ctx, storage.Assembly{Store: st, Key: "recordings/r/d/recording.mp4",
		Sources: []storage.Source{{Object: "recordings/r/d/chunks/000001"}, {Body: bytes.NewReader(last), Size: 777}}})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("assemble from a missing chunk: %v", err)
	}
	if ups, _ := st.ListUploads(ctx, storage.RecordingsPrefix); len(ups) != 0 {
		t.Fatalf("uploads left after a failure: %v", ups)
	}
}

func TestDeleteDanglingObjects(t *testing.T) {
	ctx := context.Background()
	st := newLocal(t)
	put := func(key string) {
		if err := st.Put(ctx, key, bytes.NewReader([]byte("x")), 1, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, rec := range []string{"kept", "gone"} {
		for n := 1; n <= 2; n++ {
			put(storage.ChunkKey(fmt.Sprintf("recordings/r/%s/recording.mp4", rec), n))
		}
		put(fmt.Sprintf("recordings/r/%s/recording.mp4", rec))
	}
	sweep := func(now time.Time) int {
		n, err := storage.DeleteDanglingObjects(ctx, storage.DanglingObjects{Store: st, Prefix: storage.RecordingsPrefix,
			Group:     func(key string) string { f, _ := storage.ChunkOf(key); return f },
			Keep:      func(_ context.Context, folder string) (bool, error) { return folder == "recordings/r/kept/", nil },
			OlderThan: storage.DanglingAge, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := sweep(time.Now()); n != 0 {
		t.Fatalf("deleted %d young objects", n)
	}
	if n := sweep(time.Now().Add(storage.DanglingAge + time.Hour)); n != 2 {
		t.Fatalf("deleted %d old chunks of an unknown recording, want 2", n)
	}
	var left []string
	_ = st.List(ctx, storage.RecordingsPrefix, func(o storage.Object) error { left = append(left, o.Key); return nil })
	if len(left) != 4 {
		t.Fatalf("left %v", left)
	}
}
