package storage_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"onair/storage"
	"onair/storage/storagetest"
)

// A writer gone with its disk left parts in the store: CompleteStored makes the object of
// the whole parts reaching what is worth keeping, and leaves no upload behind.
func TestCompleteStored(t *testing.T) {
	_, st := newS3(t)
	ctx := context.Background()
	data := storagetest.Data(7, 3*partSize)
	part := func(i int) []byte { return data[(i-1)*partSize : i*partSize] }
	// upload starts an upload of key holding the given parts of data.
	upload := func(t *testing.T, key string, parts ...int) string {
		t.Helper()
		id, err := st.CreateUpload(ctx, key, "video/mp4")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range parts {
			if _, err := st.UploadPart(ctx, key, id, n, bytes.NewReader(part(n)), partSize); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	cases := []struct {
		name string
		// setup starts the key's uploads and returns the writer's upload id.
		setup func(t *testing.T, key string) string
		keep  int64 // what the writer's index says is worth keeping
		want  []byte
		parts int
	}{
		{"the cut falls in the last part: every part is kept", func(t *testing.T, key string) string {
			return upload(t, key, 1, 2, 3)
		}, 2*partSize + 10, data, 3},
		{"the cut falls in an earlier part: the parts after it are left out", func(t *testing.T, key string) string {
			return upload(t, key, 1, 2, 3)
		}, partSize + 10, data[:2*partSize], 2},
		{"parts after a hole cannot be used", func(t *testing.T, key string) string {
			return upload(t, key, 1, 3)
		}, 3 * partSize, data[:partSize], 1},
		{"nothing worth keeping: no object", func(t *testing.T, key string) string {
			return upload(t, key, 1)
		}, 0, nil, 0},
		{"no part reached the store: no object", func(t *testing.T, key string) string {
			return upload(t, key)
		}, partSize, nil, 0},
		{"the writer's upload wins over another of the key", func(t *testing.T, key string) string {
			upload(t, key, 1, 2, 3)
			return upload(t, key, 1)
		}, partSize, data[:partSize], 1},
		{"without the writer's id, the upload holding most", func(t *testing.T, key string) string {
			upload(t, key, 1)
			upload(t, key, 1, 2)
			return ""
		}, 2 * partSize, data[:2*partSize], 2},
		{"completed by an earlier adopter", func(t *testing.T, key string) string {
			id := upload(t, key, 1, 2)
			parts, err := st.ListParts(ctx, key, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.CompleteUpload(ctx, key, id, parts); err != nil {
				t.Fatal(err)
			}
			return id
		}, partSize, data[:2*partSize], 0},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "recordings/adopt/" + string(rune('a'+i)) + "/video.mp4"
			id := c.setup(t, key)
			ups, err := st.ListUploads(ctx, storage.RecordingsPrefix)
			if err != nil {
				t.Fatal(err)
			}
			var found int64 = -1
			done, err := storage.CompleteStored(ctx, storage.Adoption{Store: st, Key: key, Uploads: ups, UploadID: id,
				Keep: func(f int64) int64 { found = f; return c.keep }, Logger: logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if done.Size != int64(len(c.want)) || done.Parts != c.parts {
				t.Fatalf("adopted %+v (found %d), want %d bytes in %d parts", done, found, len(c.want), c.parts)
			}
			if c.want == nil {
				if _, err := st.Head(ctx, key); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("an object was made of nothing: %v", err)
				}
			} else {
				checkObject(t, st, key, c.want)
			}
			ups, err = st.ListUploads(ctx, storage.RecordingsPrefix)
			if err != nil {
				t.Fatal(err)
			}
			if i := slices.IndexFunc(ups, func(u storage.PendingUpload) bool { return u.Key == key }); i >= 0 {
				t.Fatalf("upload left: %+v", ups[i])
			}
			// Again, as an adopter that crashed before the end: the same object.
			again, err := storage.CompleteStored(ctx, storage.Adoption{Store: st, Key: key, Uploads: ups, UploadID: id,
				Keep: func(int64) int64 { return c.keep }, Logger: logger(t)})
			if err != nil || again.Size != done.Size {
				t.Fatalf("second adoption = %+v, %v; first %+v", again, err, done)
			}
		})
	}
}
