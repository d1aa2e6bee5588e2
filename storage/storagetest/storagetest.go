// Package storagetest is the conformance suite every storage.Store backend passes, so that
// onair behaves the same on S3, MinIO, R2 and a local directory.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"onair/storage"
)

// Data returns n reproducible pseudo-random bytes.
func Data(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 1})
	_, _ = r.Read(b)
	return b
}

// Run runs the suite against st. Every case works under its own prefix, so st may be
// shared and non-empty. Presigned URLs must be reachable with plain net/http.
func Run(t *testing.T, st storage.Store) {
	base := fmt.Sprintf("conformance-%d/", time.Now().UnixNano())
	cases := []struct {
		name string
		fn   func(t *testing.T, st storage.Store, prefix string)
	}{
		{"PutGetHead", testPutGetHead},
		{"RangedGet", testRangedGet},
		{"NotFound", testNotFound},
		{"InvalidKeys", testInvalidKeys},
		{"List", testList},
		{"DeleteAndDeletePrefix", testDelete},
		{"Multipart", testMultipart},
		{"MultipartSmallMiddlePart", testSmallMiddlePart},
		{"CopyPart", testCopyPart},
		{"AbortAndListUploads", testAbortAndListUploads},
		{"PresignGet", testPresignGet},
		{"PresignPut", testPresignPut},
		{"PresignPart", testPresignPart},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, st, base+c.name+"/") })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func put(t *testing.T, st storage.Store, key string, data []byte, ct string) {
	t.Helper()
	if err := st.Put(ctx(t), key, bytes.NewReader(data), int64(len(data)), ct); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// ReadAll gets a whole object.
func ReadAll(t testing.TB, st storage.Store, key string) []byte {
	t.Helper()
	rc, _, err := st.Get(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func get(t *testing.T, st storage.Store, key string, off, n int64) ([]byte, storage.Object, error) {
	t.Helper()
	rc, obj, err := st.Get(ctx(t), key, off, n)
	if err != nil {
		return nil, obj, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return b, obj, err
}

func testPutGetHead(t *testing.T, st storage.Store, p string) {
	data := Data(1, 100_000)
	key := p + "a/b/video.mp4"
	put(t, st, key, data, "video/mp4")
	obj, err := st.Head(ctx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != int64(len(data)) || obj.ContentType != "video/mp4" || obj.Key != key || obj.LastModified.IsZero() {
		t.Fatalf("head = %+v", obj)
	}
	if got := ReadAll(t, st, key); !bytes.Equal(got, data) {
		t.Fatalf("get returned %d bytes, want the %d put", len(got), len(data))
	}
	// Replacing an object replaces it whole.
	put(t, st, key, []byte("short"), "text/plain")
	if got := ReadAll(t, st, key); string(got) != "short" {
		t.Fatalf("after replace: %q", got)
	}
	// Empty objects exist.
	put(t, st, p+"empty", nil, "")
	if got, obj, err := get(t, st, p+"empty", 0, -1); err != nil || len(got) != 0 || obj.Size != 0 {
		t.Fatalf("empty object: %q %+v %v", got, obj, err)
	}
}

func testRangedGet(t *testing.T, st storage.Store, p string) {
	data := Data(2, 10_000)
	key := p + "obj"
	put(t, st, key, data, "application/octet-stream")
	for _, c := range []struct{ off, n, from, to int64 }{
		{0, 10, 0, 10},
		{10, 100, 10, 110},
		{5000, -1, 5000, 10_000},
		{9990, 100, 9990, 10_000}, // a length past the end is cut
		{9999, 1, 9999, 10_000},
	} {
		got, obj, err := get(t, st, key, c.off, c.n)
		if err != nil {
			t.Fatalf("get(%d, %d): %v", c.off, c.n, err)
		}
		if !bytes.Equal(got, data[c.from:c.to]) {
			t.Fatalf("get(%d, %d): %d bytes, not bytes %d-%d", c.off, c.n, len(got), c.from, c.to)
		}
		if obj.Size != int64(len(data)) {
			t.Fatalf("get(%d, %d): object size %d, want the whole %d", c.off, c.n, obj.Size, len(data))
		}
	}
	if _, _, err := get(t, st, key, 10_000, 10); !errors.Is(err, storage.ErrInvalidRange) {
		t.Fatalf("get past the end: %v, want ErrInvalidRange", err)
	}
}

func testNotFound(t *testing.T, st storage.Store, p string) {
	c := ctx(t)
	if _, err := st.Head(c, p+"missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("head missing: %v", err)
	}
	if _, _, err := st.Get(c, p+"missing", 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if _, _, err := st.Get(c, p+"missing", 5, 10); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ranged get missing: %v", err)
	}
	if err := st.Delete(c, p+"missing"); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
	bogus := "00000000000000000000000000000000"
	if _, err := st.ListParts(c, p+"missing", bogus); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("list parts of no upload: %v", err)
	}
	if err := st.AbortUpload(c, p+"missing", bogus); err != nil {
		t.Fatalf("abort of an unknown upload: %v, want nil", err)
	}
}

func testInvalidKeys(t *testing.T, st storage.Store, p string) {
	c := ctx(t)
	for _, key := range []string{"", "/etc/passwd", p + "../../x", "../x", p + "a//b", p + "./a",
		p + `a\b`, p + "a\x00b", p + "dir/", p + "a\nb"} {
		if err := st.Put(c, key, bytes.NewReader([]byte("x")), 1, ""); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("put %q: %v, want ErrInvalidKey", key, err)
		}
		if _, err := st.Head(c, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("head %q: %v, want ErrInvalidKey", key, err)
		}
		if _, _, err := st.Get(c, key, 0, -1); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("get %q: %v, want ErrInvalidKey", key, err)
		}
		if _, err := st.CreateUpload(c, key, ""); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("create upload %q: %v, want ErrInvalidKey", key, err)
		}
		if _, err := st.PresignGet(c, key, time.Minute, ""); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("presign %q: %v, want ErrInvalidKey", key, err)
		}
	}
	if err := st.List(c, "../", func(storage.Object) error { return nil }); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("list ../: %v, want ErrInvalidKey", err)
	}
}

func listKeys(t *testing.T, st storage.Store, prefix string) []string {
	t.Helper()
	keys := []string{}
	err := st.List(ctx(t), prefix, func(o storage.Object) error {
		if o.Size <= 0 || o.LastModified.IsZero() {
			t.Errorf("listed %+v", o)
		}
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return keys
}

func testList(t *testing.T, st storage.Store, p string) {
	for _, k := range []string{"a", "b/c", "b.d", "c", "bb/e"} {
		put(t, st, p+k, []byte(k), "")
	}
	put(t, st, strings.TrimSuffix(p, "/")+"-other/x", []byte("x"), "")
	// Key order is byte order: '.' sorts before '/'.
	want := []string{p + "a", p + "b.d", p + "b/c", p + "bb/e", p + "c"}
	if got := listKeys(t, st, p); !slices.Equal(got, want) {
		t.Fatalf("list %q = %q, want %q", p, got, want)
	}
	if got, want := listKeys(t, st, p+"b"), []string{p + "b.d", p + "b/c", p + "bb/e"}; !slices.Equal(got, want) {
		t.Fatalf("list %q = %q, want %q", p+"b", got, want)
	}
	if got, want := listKeys(t, st, p+"b/"), []string{p + "b/c"}; !slices.Equal(got, want) {
		t.Fatalf("list %q = %q, want %q", p+"b/", got, want)
	}
	if got := listKeys(t, st, p+"zzz"); len(got) != 0 {
		t.Fatalf("list of nothing = %q", got)
	}
	stop := errors.New("enough")
	n := 0
	err := st.List(ctx(t), p, func(storage.Object) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("list stopped by its callback: %v after %d", err, n)
	}
}

func testDelete(t *testing.T, st storage.Store, p string) {
	for _, k := range []string{"keep", "rec/room/1/a", "rec/room/1/b", "rec/room/2/a", "rec/room10/a"} {
		put(t, st, p+k, []byte(k), "")
	}
	if err := st.Delete(ctx(t), p+"rec/room/2/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Head(ctx(t), p+"rec/room/2/a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("head after delete: %v", err)
	}
	if err := st.DeletePrefix(ctx(t), p+"rec/room/"); err != nil {
		t.Fatal(err)
	}
	if got, want := listKeys(t, st, p), []string{p + "keep", p + "rec/room10/a"}; !slices.Equal(got, want) {
		t.Fatalf("after delete prefix: %q, want %q", got, want)
	}
	if err := st.DeletePrefix(ctx(t), ""); err == nil {
		t.Fatal("delete prefix \"\" deleted everything")
	}
}

func uploadPart(t *testing.T, st storage.Store, key, id string, n int, data []byte) storage.Part {
	t.Helper()
	part, err := st.UploadPart(ctx(t), key, id, n, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("upload part %d: %v", n, err)
	}
	if part.Number != n || part.Size != int64(len(data)) || part.ETag == "" {
		t.Fatalf("upload part %d = %+v", n, part)
	}
	return part
}

func testMultipart(t *testing.T, st storage.Store, p string) {
	key := p + "rec.mp4"
	id, err := st.CreateUpload(ctx(t), key, "video/mp4")
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{Data(3, 6<<20), Data(4, 5<<20+1), Data(5, 100)}
	// Part 2 is uploaded twice: a retry replaces it.
	uploadPart(t, st, key, id, 2, Data(6, 5<<20+7))
	var done []storage.Part
	for i, b := range parts {
		done = append(done, uploadPart(t, st, key, id, i+1, b))
	}
	listed, err := st.ListParts(ctx(t), key, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 3 {
		t.Fatalf("list parts = %+v", listed)
	}
	for i, lp := range listed {
		if lp.Number != i+1 || lp.Size != int64(len(parts[i])) || strings.Trim(lp.ETag, `"`) != strings.Trim(done[i].ETag, `"`) {
			t.Fatalf("listed part %d = %+v, uploaded %+v", i+1, lp, done[i])
		}
	}
	ups, err := st.ListUploads(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 1 || ups[0].Key != key || ups[0].UploadID != id || ups[0].Initiated.IsZero() {
		t.Fatalf("list uploads = %+v", ups)
	}
	// Completing with the parts as ListParts gives them is what crash recovery does.
	if err := st.CompleteUpload(ctx(t), key, id, listed); err != nil {
		t.Fatal(err)
	}
	if got := ReadAll(t, st, key); !bytes.Equal(got, bytes.Join(parts, nil)) {
		t.Fatalf("completed object has %d bytes, not the parts' %d", len(got), len(bytes.Join(parts, nil)))
	}
	if obj, err := st.Head(ctx(t), key); err != nil || obj.ContentType != "video/mp4" {
		t.Fatalf("head completed: %+v %v", obj, err)
	}
	if ups, err := st.ListUploads(ctx(t), p); err != nil || len(ups) != 0 {
		t.Fatalf("uploads after complete: %+v %v", ups, err)
	}
}

// testCopyPart assembles an object from other objects inside the store, as recordings are
// assembled from their chunks, with a last part uploaded from onair.
func testCopyPart(t *testing.T, st storage.Store, p string) {
	key := p + "whole.mp4"
	chunks := [][]byte{Data(20, 5<<20+3), Data(21, 6<<20)}
	for i, b := range chunks {
		put(t, st, fmt.Sprintf("%schunks/%d", p, i+1), b, "video/mp4")
	}
	last := Data(22, 1000)
	id, err := st.CreateUpload(ctx(t), key, "video/mp4")
	if err != nil {
		t.Fatal(err)
	}
	var parts []storage.Part
	for i := range chunks {
		// Twice, as a retry would: the copy replaces the part.
		for range 2 {
			part, err := st.CopyPart(ctx(t), key, id, i+1, fmt.Sprintf("%schunks/%d", p, i+1))
			if err != nil {
				t.Fatalf("copy part %d: %v", i+1, err)
			}
			if part.Number != i+1 || part.Size != int64(len(chunks[i])) || part.ETag == "" {
				t.Fatalf("copy part %d = %+v", i+1, part)
			}
			if len(parts) == i {
				parts = append(parts, part)
			}
		}
	}
	parts = append(parts, uploadPart(t, st, key, id, 3, last))
	if _, err := st.CopyPart(ctx(t), key, id, 4, p+"chunks/missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("copy part from a missing object: %v, want ErrNotFound", err)
	}
	if err := st.CompleteUpload(ctx(t), key, id, parts); err != nil {
		t.Fatal(err)
	}
	if got, want := ReadAll(t, st, key), bytes.Join(append(chunks, last), nil); !bytes.Equal(got, want) {
		t.Fatalf("assembled object has %d bytes, want the %d of its sources", len(got), len(want))
	}
}

func testSmallMiddlePart(t *testing.T, st storage.Store, p string) {
	key := p + "small"
	id, err := st.CreateUpload(ctx(t), key, "")
	if err != nil {
		t.Fatal(err)
	}
	a := uploadPart(t, st, key, id, 1, Data(7, 1<<20))
	b := uploadPart(t, st, key, id, 2, Data(8, 1<<20))
	err = st.CompleteUpload(ctx(t), key, id, []storage.Part{a, b})
	if !errors.Is(err, storage.ErrPartTooSmall) {
		t.Fatalf("complete with a 1 MiB middle part: %v, want ErrPartTooSmall", err)
	}
	if err := st.AbortUpload(ctx(t), key, id); err != nil {
		t.Fatal(err)
	}
}

func testAbortAndListUploads(t *testing.T, st storage.Store, p string) {
	c := ctx(t)
	ids := map[string]string{}
	for _, k := range []string{"x/1", "x/2", "y/1"} {
		id, err := st.CreateUpload(c, p+k, "")
		if err != nil {
			t.Fatal(err)
		}
		ids[p+k] = id
	}
	ups, err := st.ListUploads(c, p+"x/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range ups {
		keys = append(keys, u.Key)
		if ids[u.Key] != u.UploadID {
			t.Fatalf("upload %+v, created %s", u, ids[u.Key])
		}
	}
	slices.Sort(keys)
	if want := []string{p + "x/1", p + "x/2"}; !slices.Equal(keys, want) {
		t.Fatalf("uploads under x/ = %q, want %q", keys, want)
	}
	uploadPart(t, st, p+"x/1", ids[p+"x/1"], 1, []byte("part"))
	for k, id := range ids {
		if err := st.AbortUpload(c, k, id); err != nil {
			t.Fatalf("abort %s: %v", k, err)
		}
	}
	if _, err := st.ListParts(c, p+"x/1", ids[p+"x/1"]); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("list parts after abort: %v", err)
	}
	if ups, err := st.ListUploads(c, p); err != nil || len(ups) != 0 {
		t.Fatalf("uploads after abort: %+v %v", ups, err)
	}
}

func httpDo(t *testing.T, method, url string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func testPresignGet(t *testing.T, st storage.Store, p string) {
	data := Data(9, 50_000)
	key := p + "clip one.mp4"
	put(t, st, key, data, "video/mp4")
	url, err := st.PresignGet(ctx(t), key, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	resp, body := httpDo(t, "GET", url, nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("presigned get: %s, %d bytes, type %q", resp.Status, len(body), resp.Header.Get("Content-Type"))
	}
	resp, body = httpDo(t, "GET", url, nil, map[string]string{"Range": "bytes=100-199"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[100:200]) {
		t.Fatalf("presigned ranged get: %s, %d bytes", resp.Status, len(body))
	}
	if cr := resp.Header.Get("Content-Range"); cr != "bytes 100-199/50000" {
		t.Fatalf("Content-Range %q", cr)
	}

	url, err = st.PresignGet(ctx(t), key, time.Hour, "My Stream – 2024.mp4")
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = httpDo(t, "GET", url, nil, nil)
	cd := resp.Header.Get("Content-Disposition")
	if resp.StatusCode != 200 || !strings.HasPrefix(cd, "attachment") || !strings.Contains(cd, "2024.mp4") {
		t.Fatalf("download: %s, Content-Disposition %q", resp.Status, cd)
	}

	// Tampering with anything signed is refused.
	tampered := strings.Replace(url, "clip%20one", "clip%20two", 1)
	if tampered == url {
		t.Fatalf("test cannot find the key in %s", redact(url))
	}
	if resp, _ := httpDo(t, "GET", tampered, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("tampered url: %s, want 403", resp.Status)
	}
	missing, err := st.PresignGet(ctx(t), p+"missing", time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := httpDo(t, "GET", missing, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("presigned get of a missing object: %s, want 404", resp.Status)
	}
}

func testPresignPut(t *testing.T, st storage.Store, p string) {
	data := Data(10, 30_000)
	key := p + "upload/thumb.jpg"
	url, err := st.PresignPut(ctx(t), key, time.Hour, "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := httpDo(t, "PUT", url, data, map[string]string{"Content-Type": "text/html"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("put with another content type: %s, want 403", resp.Status)
	}
	if resp, body := httpDo(t, "PUT", url, data, map[string]string{"Content-Type": "image/jpeg"}); resp.StatusCode != 200 {
		t.Fatalf("presigned put: %s %s", resp.Status, body)
	}
	obj, err := st.Head(ctx(t), key)
	if err != nil || obj.Size != int64(len(data)) || obj.ContentType != "image/jpeg" {
		t.Fatalf("head after presigned put: %+v %v", obj, err)
	}
	if got := ReadAll(t, st, key); !bytes.Equal(got, data) {
		t.Fatal("presigned put stored other bytes")
	}
}

// testPresignPart uploads a multipart object through presigned part URLs, as a browser
// does: out of order, one part retried on its URL, a body of another size refused.
func testPresignPart(t *testing.T, st storage.Store, p string) {
	c := ctx(t)
	key := p + "upload/source"
	id, err := st.CreateUpload(c, key, "video/mp4")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.AbortUpload(context.Background(), key, id) })
	data := Data(11, storage.MinPartSize+70_000)
	sizes := []int64{storage.MinPartSize, int64(len(data)) - storage.MinPartSize}
	urls := make([]string, 2)
	for i, size := range sizes {
		if urls[i], err = st.PresignPart(c, key, id, i+1, size, time.Hour); err != nil {
			t.Fatalf("presign part %d: %v", i+1, err)
		}
	}
	bodies := [][]byte{data[:storage.MinPartSize], data[storage.MinPartSize:]}
	if resp, _ := httpDo(t, "PUT", urls[1], bodies[1][:100], nil); resp.StatusCode < 400 {
		t.Fatalf("part with a body of another size: %s, want refused", resp.Status)
	}
	for _, i := range []int{1, 0, 1} { // out of order, part 2 twice
		if resp, body := httpDo(t, "PUT", urls[i], bodies[i], nil); resp.StatusCode != 200 {
			t.Fatalf("presigned part %d: %s %s", i+1, resp.Status, body)
		}
	}
	parts, err := st.ListParts(c, key, id)
	if err != nil || len(parts) != 2 || parts[0].Size != sizes[0] || parts[1].Size != sizes[1] {
		t.Fatalf("parts after presigned puts: %+v %v", parts, err)
	}
	if err := st.CompleteUpload(c, key, id, parts); err != nil {
		t.Fatal(err)
	}
	if got := ReadAll(t, st, key); !bytes.Equal(got, data) {
		t.Fatal("presigned parts assembled into other bytes")
	}
	if _, err := st.PresignPart(c, key, id, 0, 10, time.Hour); err == nil {
		t.Fatal("presigned part 0")
	}
}

// redact keeps a URL's signature out of test logs.
func redact(url string) string {
	if i := strings.IndexByte(url, '?'); i >= 0 {
		return url[:i] + "?…"
	}
	return url
}
