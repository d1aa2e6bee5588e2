package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"onair/media"
)

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	_, _ = w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// noHLS is an HLS server without streams.
type noHLS struct{ http.Handler }

func (noHLS) Live(string) bool { return false }

func (noHLS) Immutable(string) bool { return false }

// testServer is a Server without MongoDB whose bundle is dist.
func testServer(t *testing.T, dist fstest.MapFS) *Server {
	t.Helper()
	s, err := New(Config{HLS: noHLS{http.NotFoundHandler()}, Hub: media.NewHub(media.HubConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	st, err := newSite(dist)
	if err != nil {
		t.Fatal(err)
	}
	s.site = st
	return s
}

func get(t *testing.T, h http.Handler, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestAssetsCompressedAndCached(t *testing.T) {
	js := []byte(strings.Repeat("console.log('onair');", 50))
	dist := fstest.MapFS{
		"manifest.json":          {Data: []byte(`{"app.js":"app-ABCD2345.js"}`)},
		"app-ABCD2345.js":        {Data: js},
		"app-ABCD2345.js.gz":     {Data: gz(t, js)},
		"app-ABCD2345.js.br":     {Data: []byte("brotli bytes")},
		"plain.txt":              {Data: []byte("not hashed")},
		"README.md":              {Data: []byte("readme")},
		"onair-ZZZZ2222.css":     {Data: []byte("body{}")},
		"onair-ZZZZ2222.css.bad": {Data: []byte("ignored")},
	}
	h := testServer(t, dist).Handler()

	for _, tc := range []struct {
		accept, encoding string
		body             []byte
	}{
		{"gzip, deflate, br, zstd", "br", []byte("brotli bytes")},
		{"gzip", "gzip", gz(t, js)},
		{"br;q=0, gzip;q=0.5", "gzip", gz(t, js)},
		{"*", "br", []byte("brotli bytes")},
		{"*;q=0, identity", "", js},
		{"", "", js},
	} {
		resp := get(t, h, "/assets/app-ABCD2345.js", "Accept-Encoding", tc.accept)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != tc.encoding || !bytes.Equal(body, tc.body) {
			t.Errorf("Accept-Encoding %q: %d, Content-Encoding %q, %d bytes; want %q", tc.accept, resp.StatusCode,
				resp.Header.Get("Content-Encoding"), len(body), tc.encoding)
		}
		if resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
			resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("Accept-Encoding %q: headers %v", tc.accept, resp.Header)
		}
	}

	// Revalidation by ETag, per encoding.
	first := get(t, h, "/assets/app-ABCD2345.js", "Accept-Encoding", "br")
	etag := first.Header.Get("ETag")
	if again := get(t, h, "/assets/app-ABCD2345.js", "Accept-Encoding", "br", "If-None-Match", etag); again.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %d, want 304", etag, again.StatusCode)
	}
	if other := get(t, h, "/assets/app-ABCD2345.js", "Accept-Encoding", "gzip", "If-None-Match", etag); other.StatusCode != 200 {
		t.Errorf("the brotli ETag matched the gzip body: %d", other.StatusCode)
	}

	if resp := get(t, h, "/assets/plain.txt"); resp.Header.Get("Cache-Control") != "public, max-age=300" || resp.Header.Get("Vary") != "" {
		t.Errorf("an unhashed file: %v", resp.Header)
	}
	for _, p := range []string{"/assets/README.md", "/assets/manifest.json", "/assets/app-ABCD2345.js.gz", "/assets/nope.js", "/assets/..%2fpages.go"} {
		if resp := get(t, h, p); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestPagesHeadersAndAssets(t *testing.T) {
	dist := fstest.MapFS{
		"manifest.json":      {Data: []byte(`{"app.js":"app-ABCD2345.js","player.js":"player-EFGH6789.js","onair.css":"onair-ZZZZ2222.css"}`)},
		"app-ABCD2345.js":    {Data: []byte("app")},
		"player-EFGH6789.js": {Data: []byte("player")},
		"onair-ZZZZ2222.css": {Data: []byte("css")},
	}
	h := testServer(t, dist).Handler()
	for _, tc := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/", 200, []string{`src="/assets/app-ABCD2345.js"`, `href="/assets/onair-ZZZZ2222.css"`, "Nobody is live right now"}},
		{"/?q=%3Cb%3Ex", 200, []string{"&lt;b&gt;x"}},
		{"/watch/demo", 200, []string{`src="/assets/player-EFGH6789.js"`, `data-hls="/live/demo/index.m3u8"`, "data-player"}},
		{"/watch/..%2fetc", 404, []string{"Not found"}},
		{"/rooms/abc", 404, []string{"Not found"}},
		{"/nowhere", 404, []string{"There is nothing at this address"}},
		{"/login", 503, []string{"Accounts need MongoDB"}},
		{"/dashboard", 503, []string{"Rooms need MongoDB"}},
	} {
		resp := get(t, h, tc.path)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
		for _, w := range tc.want {
			if !bytes.Contains(body, []byte(w)) {
				t.Errorf("%s: body lacks %q", tc.path, w)
			}
		}
		if bytes.Contains(body, []byte("<script>")) || bytes.Contains(body, []byte("<b>x")) {
			t.Errorf("%s: inline script or unescaped input in the page", tc.path)
		}
		hd := resp.Header
		csp := hd.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			hd.Get("X-Frame-Options") != "DENY" || hd.Get("X-Content-Type-Options") != "nosniff" ||
			hd.Get("Referrer-Policy") != "same-origin" || hd.Get("Cache-Control") != "private, no-cache" ||
			hd.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("%s: headers %v", tc.path, hd)
		}
	}
}

func TestLocalPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/dashboard": true, "/rooms/a?b=c": true, "": false, "//evil.example": false,
		"https://evil.example": false, "/\\evil.example": false, "/a\r\nSet-Cookie: x": false,
		// Browsers strip tabs and newlines: each of these would become //evil.example.
		"/\t/evil.example/x": false, "/\n/evil.example": false, "/\r/evil.example": false,
		"/%2F/evil.example": false, // safe in a browser, but refused rather than reasoned about
		"/ /evil.example":   false, "/\u00a0/evil.example": false, "/\u2028/x": false,
		"/watch/a room": false, "/watch/caf\u00e9": true,
	} {
		if got := localPath(p); got != want {
			t.Errorf("localPath(%q) = %v, want %v", p, got, want)
		}
	}
}
