package storage_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"onair/storage"
	"onair/storage/local"
)

func TestJanitorDeletesOldRecordings(t *testing.T) {
	root := t.TempDir()
	st, err := local.New(local.Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	old := time.Now().Add(-40 * 24 * time.Hour)
	for _, k := range []string{"recordings/r/old/video.mp4", "recordings/r/new/video.mp4", "avatars/old.png"} {
		if err := st.Put(ctx, k, bytes.NewReader([]byte("x")), 1, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"recordings/r/old/video.mp4", "avatars/old.png"} {
		if err := os.Chtimes(filepath.Join(root, "objects", k), old, old); err != nil {
			t.Fatal(err)
		}
	}
	j, err := storage.NewJanitor(storage.JanitorConfig{Store: st, MaxAge: 30 * 24 * time.Hour, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	n, err := j.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep deleted %d, %v; want 1", n, err)
	}
	if _, err := st.Head(ctx, "recordings/r/old/video.mp4"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("old recording: %v", err)
	}
	for _, k := range []string{"recordings/r/new/video.mp4", "avatars/old.png"} {
		if _, err := st.Head(ctx, k); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
}
