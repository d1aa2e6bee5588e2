package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"onair/storage"
	"onair/storage/storagetest"
)

// clock is a settable time for URL expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Now()} }
func secret() []byte                     { return bytes.Repeat([]byte("k"), 32) }
func httpGet(t *testing.T, u string) int { return do(t, "GET", u, nil, nil).StatusCode }

// newServed returns a store whose presigned URLs reach its Handler on a test server.
func newServed(t *testing.T, now func() time.Time) (*Store, string) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	root := t.TempDir()
	st, err := New(Config{Root: root, BaseURL: srv.URL, Secret: secret(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mux.Handle("/storage/", st.Handler())
	return st, root
}

func do(t *testing.T, method, u string, body []byte, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestConformance(t *testing.T) {
	st, _ := newServed(t, nil)
	storagetest.Run(t, st)
}

func TestKeysCannotLeaveTheRoot(t *testing.T) {
	st, root := newServed(t, nil)
	ctx := context.Background()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../secret", "a/../../secret", "/etc/passwd", `..\secret`, "a\x00b", ".", "a/./b"} {
		if _, err := st.Head(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("head %q: %v, want ErrInvalidKey", key, err)
		}
	}
	// A symlink planted inside the root (by anyone with file system access) leads nowhere.
	if err := os.Symlink(outside, filepath.Join(root, "objects", "escape")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Get(ctx, "escape/secret", 0, -1); err == nil {
		t.Fatal("read a file outside the root through a symlink")
	}
	if err := st.Put(ctx, "escape/planted", bytes.NewReader([]byte("x")), 1, ""); err == nil {
		t.Fatal("wrote a file outside the root through a symlink")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); err == nil {
		t.Fatal("file planted outside the root")
	}
	// Upload ids become paths too.
	if _, err := st.ListParts(ctx, "a", "../../objects"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("list parts with a path as upload id: %v", err)
	}
}

func TestHandler(t *testing.T) {
	clk := newClock()
	st, _ := newServed(t, clk.Now)
	ctx := context.Background()
	data := storagetest.Data(1, 4096)
	if err := st.Put(ctx, "recordings/r/b/video.mp4", bytes.NewReader(data), int64(len(data)), "video/mp4"); err != nil {
		t.Fatal(err)
	}
	u, err := st.PresignGet(ctx, "recordings/r/b/video.mp4", time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	resp := do(t, "GET", u, nil, map[string]string{"Range": "bytes=0-99"})
	if resp.StatusCode != http.StatusPartialContent || resp.ContentLength != 100 {
		t.Fatalf("range: %s, %d bytes", resp.Status, resp.ContentLength)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") != "sandbox" {
		t.Fatalf("served without sandbox headers: %v", resp.Header)
	}
	if resp := do(t, "HEAD", u, nil, nil); resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Fatalf("head: %s %d", resp.Status, resp.ContentLength)
	}

	parsed, _ := url.Parse(u)
	q := parsed.Query()
	bad := func(change func(url.Values)) string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = append([]string(nil), vs...)
		}
		change(v)
		p := *parsed
		p.RawQuery = v.Encode()
		return p.String()
	}
	for name, u := range map[string]string{
		"no signature":      bad(func(v url.Values) { v.Del("sig") }),
		"wrong signature":   bad(func(v url.Values) { v.Set("sig", strings.Repeat("0", 64)) }),
		"garbage signature": bad(func(v url.Values) { v.Set("sig", "zz") }),
		"later expiry":      bad(func(v url.Values) { v.Set("exp", "99999999999") }),
		"added download":    bad(func(v url.Values) { v.Set("dl", "x.html") }),
	} {
		if code := httpGet(t, u); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, code)
		}
	}
	// A GET signature is no PUT signature.
	if resp := do(t, "PUT", u, []byte("x"), nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("put with a get signature: %s", resp.Status)
	}
	if resp := do(t, "DELETE", u, nil, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("delete: %s", resp.Status)
	}
	// Path tricks do not reach the handler's files (the client would clean "..": escape it).
	base := strings.Split(u, "/storage/")[0]
	if code := httpGet(t, base+"/storage/%2e%2e/%2e%2e/etc/passwd?"+parsed.RawQuery); code != http.StatusNotFound {
		t.Fatalf("traversal through the handler: %d, want 404", code)
	}

	clk.Add(2 * time.Minute)
	if code := httpGet(t, u); code != http.StatusForbidden {
		t.Fatalf("expired url: %d, want 403", code)
	}
	put, err := st.PresignPut(ctx, "uploads/x.jpg", time.Minute, "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	if resp := do(t, "PUT", put, []byte("x"), map[string]string{"Content-Type": "image/jpeg"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("expired put: %s", resp.Status)
	}
}

func TestNoSecretNoPresign(t *testing.T) {
	st, err := New(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.PresignGet(context.Background(), "a", time.Minute, ""); err == nil {
		t.Fatal("presigned without a secret")
	}
	if _, err := New(Config{Root: t.TempDir(), Secret: []byte("short")}); err == nil {
		t.Fatal("accepted a short secret")
	}
}

// A PUT needs a URL this store handed out and nobody used: a URL signed with the same
// secret elsewhere (another process, an old log) writes nothing, and a used one is spent.
func TestPresignedPutOnlyWhatWasAskedFor(t *testing.T) {
	ctx := context.Background()
	st, _ := newServed(t, nil)
	jpeg := map[string]string{"Content-Type": "image/jpeg"}
	other, err := New(Config{Root: t.TempDir(), BaseURL: strings.TrimSuffix(st.cfg.BaseURL, "/"), Secret: secret()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	forged, err := other.PresignPut(ctx, "uploads/a.jpg", time.Minute, "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	if resp := do(t, "PUT", forged, []byte("x"), jpeg); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("PUT on a URL this store did not hand out: %s, want 403", resp.Status)
	}
	if _, err := st.Head(ctx, "uploads/a.jpg"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the refused PUT stored something: %v", err)
	}

	put, err := st.PresignPut(ctx, "uploads/b.jpg", time.Minute, "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	if resp := do(t, "PUT", put, []byte("x"), map[string]string{"Content-Type": "text/html"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("PUT with an unsigned content type: %s, want 403", resp.Status)
	}
	if resp := do(t, "PUT", put, []byte("x"), jpeg); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT after a refused attempt: %s, want 200", resp.Status)
	}
	if resp := do(t, "PUT", put, []byte("y"), jpeg); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("second PUT on a used URL: %s, want 403", resp.Status)
	}
}

func TestPendingPutsBounded(t *testing.T) {
	var p pendingPuts
	for i := range MaxPendingPuts {
		if err := p.add(strconv.Itoa(i), 100, 50); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	if err := p.add("one more", 100, 50); err == nil {
		t.Fatalf("more than MaxPendingPuts (%d) pending", MaxPendingPuts)
	}
	if err := p.add("after expiry", 300, 101); err != nil {
		t.Fatalf("expired entries were not pruned: %v", err)
	}
	if len(p.exp) != 1 {
		t.Fatalf("%d pending after pruning, want 1", len(p.exp))
	}
}

// A part URL writes the part it was signed for and nothing else: not unsigned, not once
// expired, not another key, part or upload, not a body over the signed size.
func TestPresignedPartRefusals(t *testing.T) {
	clk := newClock()
	st, _ := newServed(t, clk.Now)
	ctx := context.Background()
	id, err := st.CreateUpload(ctx, "uploads/a/source", "video/mp4")
	if err != nil {
		t.Fatal(err)
	}
	const size = 1000
	u, err := st.PresignPart(ctx, "uploads/a/source", id, 3, size, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), size)
	put := func(u string, body []byte) int { return do(t, "PUT", u, body, nil).StatusCode }
	parsed, _ := url.Parse(u)
	q := parsed.Query()
	with := func(key, val string) string {
		c := *parsed
		q2 := url.Values{}
		for k, v := range q {
			q2[k] = v
		}
		q2.Set(key, val)
		c.RawQuery = q2.Encode()
		return c.String()
	}
	unsigned := *parsed
	unsigned.RawQuery = ""
	other := strings.Replace(u, "uploads/a/source", "uploads/b/source", 1)
	for name, code := range map[string]int{
		"unsigned":      put(unsigned.String(), body),
		"another key":   put(other, body),
		"another part":  put(with("part", id+".4."+strconv.Itoa(size)), body),
		"another size":  put(with("part", id+".3.2000"), append(body, body...)),
		"later expiry":  put(with("exp", strconv.FormatInt(clk.Now().Add(time.Hour).Unix(), 10)), body),
		"bad signature": put(with("sig", strings.Repeat("0", 64)), body),
	} {
		if code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, code)
		}
	}
	if code := put(u, append(body, 'y')); code == http.StatusOK {
		t.Error("a body over the signed size was stored")
	}
	if code := put(u, body[:size-1]); code == http.StatusOK {
		t.Error("a body under the signed size was stored")
	}
	if parts, err := st.ListParts(ctx, "uploads/a/source", id); err != nil || len(parts) != 0 {
		t.Fatalf("parts after refused puts: %+v %v", parts, err)
	}
	if code := put(u, body); code != http.StatusOK {
		t.Fatalf("signed part: %d", code)
	}
	clk.Add(2 * time.Minute)
	if code := put(u, body); code != http.StatusForbidden {
		t.Errorf("expired URL: %d, want 403", code)
	}
	// An aborted upload takes no more parts, even on a valid URL.
	u, _ = st.PresignPart(ctx, "uploads/a/source", id, 1, size, time.Minute)
	if err := st.AbortUpload(ctx, "uploads/a/source", id); err != nil {
		t.Fatal(err)
	}
	if code := put(u, body); code != http.StatusNotFound {
		t.Errorf("part of an aborted upload: %d, want 404", code)
	}
}
