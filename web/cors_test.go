package web

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"onair/media"
	"onair/storage"
	"onair/storage/local"
)

// A player on another site fetches a replay's fragments from the local backend with a
// Range request: the answer must be readable there, and the preflight answered.
func TestStorageCORS(t *testing.T) {
	st, err := local.New(local.Config{Root: t.TempDir(), Secret: bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	key, err := storage.RecordingKey("room", "b1", "recording.mp4")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("0123456789abcdef")
	if err := st.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)), "video/mp4"); err != nil {
		t.Fatal(err)
	}
	url, err := st.PresignGet(context.Background(), key, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{HLS: noHLS{http.NotFoundHandler()}, Hub: media.NewHub(media.HubConfig{}), Storage: st.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	pre, _ := http.NewRequest(http.MethodOptions, srv.URL+url, nil)
	pre.Header.Set("Origin", "http://other.example")
	pre.Header.Set("Access-Control-Request-Method", "GET")
	pre.Header.Set("Access-Control-Request-Headers", "range")
	res, err := http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
		res.Header.Get("Access-Control-Allow-Methods") != "GET, HEAD" || !bytes.Contains([]byte(res.Header.Get("Access-Control-Allow-Headers")), []byte("Range")) {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}

	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, srv.URL+url, nil)
		req.Header.Set("Origin", "http://other.example")
		req.Header.Set("Range", "bytes=4-7")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusPartialContent || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
			res.Header.Get("Access-Control-Expose-Headers") == "" || res.Header.Get("Content-Range") != "bytes 4-7/16" {
			t.Fatalf("%s: %d %v", method, res.StatusCode, res.Header)
		}
		for _, h := range []string{"Content-Length", "Content-Range"} {
			if !bytes.Contains([]byte(res.Header.Get("Access-Control-Expose-Headers")), []byte(h)) {
				t.Fatalf("%s: %s not exposed: %v", method, h, res.Header)
			}
		}
		if method == http.MethodGet && string(got) != "4567" {
			t.Fatalf("GET body %q", got)
		}
	}

	// A bad signature is still refused, CORS or not.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+url+"x", nil)
	req.Header.Set("Origin", "http://other.example")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("tampered URL: %d", res.StatusCode)
	}
}
