package web

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"onair/media"
)

// Strict-Transport-Security goes on every response to a browser that came over HTTPS, its
// own or a trusted proxy's, and on none over plain HTTP.
func TestHSTS(t *testing.T) {
	for _, tc := range []struct {
		name       string
		hsts       time.Duration
		trustProxy bool
		tls        bool
		proto      string
		want       string
	}{
		{name: "https, default", tls: true, want: "max-age=31536000"},
		{name: "https, a day", hsts: 24 * time.Hour, tls: true, want: "max-age=86400"},
		{name: "https, off", hsts: -1, tls: true, want: ""},
		{name: "plain http", want: ""},
		{name: "trusted proxy's https", trustProxy: true, proto: "https", want: "max-age=31536000"},
		{name: "untrusted X-Forwarded-Proto", proto: "https", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{HLS: noHLS{http.NotFoundHandler()}, Hub: media.NewHub(media.HubConfig{}), HSTS: tc.hsts, TrustProxy: tc.trustProxy})
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"/healthz", "/", "/live/x/index.m3u8", "/api/v1/rooms"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if tc.tls {
					req.TLS = &tls.ConnectionState{}
				}
				if tc.proto != "" {
					req.Header.Set("X-Forwarded-Proto", tc.proto)
				}
				w := httptest.NewRecorder()
				s.Handler().ServeHTTP(w, req)
				if got := w.Header().Get("Strict-Transport-Security"); got != tc.want {
					t.Errorf("%s: Strict-Transport-Security %q, want %q", path, got, tc.want)
				}
			}
		})
	}
}

// The public port never serves /metrics: it is on a listener of its own (cmd/onair).
func TestNoMetricsRoute(t *testing.T) {
	s, err := New(Config{HLS: noHLS{http.NotFoundHandler()}, Hub: media.NewHub(media.HubConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusNotFound {
		t.Fatalf("/metrics: %d, want 404", w.Code)
	}
}
