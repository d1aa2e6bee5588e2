package main

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// Bad TLS, HTTPS, RTMPS and metrics settings stop onair with a message naming the key.
func TestTLSConfig(t *testing.T) {
	files := []string{"ONAIR_TLS_CERT_FILE=/etc/onair/cert.pem", "ONAIR_TLS_KEY_FILE=/etc/onair/key.pem"}
	tests := []struct {
		name    string
		env     []string
		wantErr string
	}{
		{name: "https from files", env: append([]string{"ONAIR_HTTP_TLS_ADDR=:8443", "ONAIR_RTMP_TLS_ADDR=:1936"}, files...)},
		{name: "https only, no plain http", env: append([]string{"ONAIR_HTTP_TLS_ADDR=:443", "ONAIR_HTTP_ADDR="}, files...)},
		{name: "acme", env: []string{"ONAIR_HTTP_TLS_ADDR=:443", "ONAIR_HTTP_ADDR=:80", "ONAIR_TLS_ACME_DOMAINS=[live.example.com]",
			"ONAIR_TLS_ACME_EMAIL=ops@example.com", "ONAIR_TLS_ACME_DIRECTORY=https://acme-staging-v02.api.letsencrypt.org/directory"}},
		{name: "metrics off", env: []string{"ONAIR_METRICS_ADDR="}},
		{name: "https without a certificate", env: []string{"ONAIR_HTTP_TLS_ADDR=:443"},
			wantErr: "http.tls_addr: needs a certificate: set tls.cert_file and tls.key_file, or tls.acme_domains"},
		{name: "rtmps without a certificate", env: []string{"ONAIR_RTMP_TLS_ADDR=:1936"}, wantErr: "rtmp.tls_addr: needs a certificate"},
		{name: "certificate without a listener", env: files, wantErr: "tls.cert_file: is set, but no listener uses TLS"},
		{name: "acme without a listener", env: []string{"ONAIR_TLS_ACME_DOMAINS=[live.example.com]"}, wantErr: "tls.acme_domains: is set, but no listener uses TLS"},
		{name: "key without certificate", env: []string{"ONAIR_HTTP_TLS_ADDR=:443", "ONAIR_TLS_KEY_FILE=/k.pem"}, wantErr: "tls.cert_file: is required with tls.key_file"},
		{name: "certificate without key", env: []string{"ONAIR_HTTP_TLS_ADDR=:443", "ONAIR_TLS_CERT_FILE=/c.pem"}, wantErr: "tls.key_file: is required with tls.cert_file"},
		{name: "files and acme", env: append([]string{"ONAIR_HTTP_TLS_ADDR=:443", "ONAIR_TLS_ACME_DOMAINS=[live.example.com]"}, files...),
			wantErr: "tls.acme_domains: set either tls.cert_file and tls.key_file, or tls.acme_domains, not both"},
		{name: "acme domain with a scheme", env: []string{"ONAIR_HTTP_TLS_ADDR=:443", "ONAIR_TLS_ACME_DOMAINS=[https://live.example.com]"},
			wantErr: `tls.acme_domains[0]: must be a DNS name`},
		{name: "acme wildcard", env: []string{"ONAIR_HTTP_TLS_ADDR=:443", "ONAIR_TLS_ACME_DOMAINS=[live.example.com, \"*.example.com\"]"},
			wantErr: `tls.acme_domains[1]: must be a DNS name`},
		{name: "acme ip address", env: []string{"ONAIR_HTTP_TLS_ADDR=:443", "ONAIR_TLS_ACME_DOMAINS=[192.0.2.1]"}, wantErr: `tls.acme_domains[0]: must be a DNS name`},
		{name: "acme email without domains", env: []string{"ONAIR_TLS_ACME_EMAIL=ops@example.com"}, wantErr: "tls.acme_email: is set without tls.acme_domains"},
		{name: "bad acme email", env: []string{"ONAIR_HTTP_TLS_ADDR=:443", "ONAIR_TLS_ACME_DOMAINS=[live.example.com]", "ONAIR_TLS_ACME_EMAIL=ops"},
			wantErr: `tls.acme_email: must be an email address, got "ops"`},
		{name: "plain acme directory", env: []string{"ONAIR_HTTP_TLS_ADDR=:443", "ONAIR_TLS_ACME_DOMAINS=[live.example.com]", "ONAIR_TLS_ACME_DIRECTORY=http://ca.example/dir"},
			wantErr: "tls.acme_directory: must be a https URL"},
		{name: "bad https address", env: append([]string{"ONAIR_HTTP_TLS_ADDR=443"}, files...), wantErr: `http.tls_addr: invalid listen address "443"`},
		{name: "no http at all", env: []string{"ONAIR_HTTP_ADDR="}, wantErr: "http.addr: must be set unless http.tls_addr is"},
		{name: "https on the plain port", env: append([]string{"ONAIR_HTTP_TLS_ADDR=127.0.0.1:8080"}, files...),
			wantErr: "http.tls_addr: listens on 127.0.0.1:8080, as http.addr does (:8080)"},
		{name: "rtmps on the rtmp port", env: append([]string{"ONAIR_RTMP_TLS_ADDR=:1935"}, files...), wantErr: "rtmp.tls_addr: listens on :1935, as rtmp.addr does"},
		{name: "metrics on the public port", env: []string{"ONAIR_METRICS_ADDR=0.0.0.0:8080"}, wantErr: "metrics.addr: listens on 0.0.0.0:8080, as http.addr does"},
		{name: "bad metrics address", env: []string{"ONAIR_METRICS_ADDR=localhost"}, wantErr: `metrics.addr: invalid listen address "localhost"`},
		{name: "plain public url with https", env: append([]string{"ONAIR_HTTP_TLS_ADDR=:443", "ONAIR_HTTP_PUBLIC_URL=http://live.example.com"}, files...),
			wantErr: "http.public_url: must be an https URL when onair serves HTTPS"},
		{name: "plain advertise url with https", env: append([]string{"ONAIR_HTTP_TLS_ADDR=:443", "ONAIR_NODE_ADVERTISE_URL=http://10.0.0.7:8080"}, files...),
			wantErr: "node.advertise_url: must be an https URL when onair serves HTTPS"},
		{name: "rtmps url without rtmps", env: []string{"ONAIR_RTMP_TLS_PUBLIC_URL=rtmps://ingest.example.com/live"}, wantErr: "rtmp.tls_public_url: is set without rtmp.tls_addr"},
		{name: "rtmps url scheme", env: append([]string{"ONAIR_RTMP_TLS_ADDR=:1936", "ONAIR_RTMP_TLS_PUBLIC_URL=rtmp://ingest.example.com/live"}, files...),
			wantErr: "rtmp.tls_public_url: must be a rtmps URL"},
		{name: "negative hsts", env: []string{"ONAIR_HTTP_HSTS_MAX_AGE=-1s"}, wantErr: "http.hsts_max_age: must be 0 (no header) or a positive duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig("", tt.env)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// Certificate files that do not load stop onair before it listens, naming the key.
func TestTLSFilesAtStart(t *testing.T) {
	ca := testenv.NewTestCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	leaf := ca.Issue(t, "localhost")
	leaf.WriteFiles(t, cert, key)
	other := ca.Issue(t, "localhost")
	otherKey := filepath.Join(dir, "other-key.pem")
	if err := os.WriteFile(otherKey, other.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		cert, key  string
		wantErr    string
		wantNoLeak bool
	}{
		{name: "missing certificate", cert: filepath.Join(dir, "nope.pem"), key: key, wantErr: "tls.cert_file: stat " + filepath.Join(dir, "nope.pem")},
		{name: "missing key", cert: cert, key: filepath.Join(dir, "nope-key.pem"), wantErr: "tls.key_file: stat "},
		{name: "key of another certificate", cert: cert, key: otherKey, wantErr: "tls.cert_file " + cert + " with tls.key_file " + otherKey, wantNoLeak: true},
		{name: "certificate as key", cert: cert, key: cert, wantErr: "tls.cert_file " + cert + " with tls.key_file " + cert},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := []string{"ONAIR_DATA_DIR=" + t.TempDir(), "ONAIR_HTTP_ADDR=127.0.0.1:0", "ONAIR_RTMP_ADDR=127.0.0.1:0",
				"ONAIR_METRICS_ADDR=", "ONAIR_HTTP_TLS_ADDR=127.0.0.1:0", "ONAIR_TLS_CERT_FILE=" + tc.cert, "ONAIR_TLS_KEY_FILE=" + tc.key}
			var logs strings.Builder
			err := run(nil, env, io.Discard, &logs)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if tc.wantNoLeak && (strings.Contains(err.Error()+logs.String(), "PRIVATE KEY") || strings.Contains(err.Error()+logs.String(), string(other.KeyPEM[40:80]))) {
				t.Fatalf("key material in the error or logs: %v\n%s", err, logs.String())
			}
		})
	}
}

// A replaced certificate reaches new handshakes; files that do not load (half copied)
// keep the previous one in use.
func TestCertReload(t *testing.T) {
	ca := testenv.NewTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := ca.Issue(t, "localhost")
	first.WriteFiles(t, certFile, keyFile)
	var logs strings.Builder
	f, err := loadCertFiles(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	serving := func() string {
		c, err := f.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.String()
	}
	if got := serving(); got != first.Cert.SerialNumber.String() {
		t.Fatalf("serving %s, want the first certificate", got)
	}

	// Only the key replaced: the pair does not match, the first certificate stays.
	second := ca.Issue(t, "localhost")
	if err := os.WriteFile(keyFile, second.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		serving() // handshakes are what look at the files
		return strings.Contains(logs.String(), "do not load"), "waiting for the mismatch to be noticed"
	})
	if got := serving(); got != first.Cert.SerialNumber.String() {
		t.Fatalf("serving %s after a half-written renewal, want the first certificate", got)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Fatalf("key material logged:\n%s", logs.String())
	}

	// Then the certificate: the new pair is served.
	if err := os.WriteFile(certFile, second.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		got := serving()
		return got == second.Cert.SerialNumber.String(), "serving " + got
	})
	if !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Errorf("the reload is not logged:\n%s", logs.String())
	}

	// Files gone (a renewal tool between its steps): the last good certificate stays.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		serving()
		return strings.Contains(logs.String(), "unreadable"), "waiting for the missing file to be noticed"
	})
	if got := serving(); got != second.Cert.SerialNumber.String() {
		t.Fatalf("serving %s without files, want the last good certificate", got)
	}
}

func TestHTTPSRedirect(t *testing.T) {
	public, _ := url.Parse("https://live.example.com")
	for _, tc := range []struct {
		name   string
		r      httpsRedirect
		target string
		want   string
	}{
		{"same host, other port", httpsRedirect{port: "8443"}, "http://localhost:8080/rooms/a?x=1", "https://localhost:8443/rooms/a?x=1"},
		{"default port", httpsRedirect{port: "443"}, "http://live.example.com/watch/demo", "https://live.example.com/watch/demo"},
		{"ipv6", httpsRedirect{port: "8443"}, "http://[::1]:8080/", "https://[::1]:8443/"},
		{"public url", httpsRedirect{port: "8443", publicURL: public}, "http://10.0.0.5:8080/live/a/index.m3u8", "https://live.example.com/live/a/index.m3u8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tc.r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, tc.target, nil))
			if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != tc.want {
				t.Fatalf("%d to %q, want 308 to %q", w.Code, w.Header().Get("Location"), tc.want)
			}
		})
	}
}

// ACME's wiring, short of a CA: TLS-ALPN-01 is offered on HTTPS, names outside
// tls.acme_domains get no certificate (nor a request to the CA), and the plain port serves
// HTTP-01 challenges and redirects the rest.
func TestACMEWiring(t *testing.T) {
	cfg, err := loadConfig("", []string{"ONAIR_DATA_DIR=" + t.TempDir(), "ONAIR_HTTP_TLS_ADDR=:8443",
		"ONAIR_TLS_ACME_DOMAINS=[live.example.com]", "ONAIR_TLS_ACME_DIRECTORY=https://127.0.0.1:1/directory"})
	if err != nil {
		t.Fatal(err)
	}
	src, err := newCertSource(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if protos := src.httpsConfig().NextProtos; !slices.Contains(protos, "acme-tls/1") || protos[0] != "h2" {
		t.Errorf("HTTPS offers %v, want h2 first and acme-tls/1", protos)
	}
	if protos := src.rtmpsConfig().NextProtos; len(protos) != 0 {
		t.Errorf("RTMPS offers %v, want no application protocols", protos)
	}
	if _, err := src.getCertificate(&tls.ClientHelloInfo{ServerName: "other.example.com"}); err == nil {
		t.Error("a certificate for a name outside tls.acme_domains")
	}
	h := src.plainHandler(httpsRedirect{port: "8443"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://live.example.com/.well-known/acme-challenge/unknown-token", nil))
	if w.Code == http.StatusPermanentRedirect {
		t.Error("an HTTP-01 challenge request was redirected")
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://live.example.com/watch/demo", nil))
	if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != "https://live.example.com:8443/watch/demo" {
		t.Errorf("plain request: %d to %q", w.Code, w.Header().Get("Location"))
	}
}

// The banner names every listener a person (and scripts/testenv, which reads it) needs.
func TestBannerWithTLS(t *testing.T) {
	cfg := defaultConfig()
	cfg.HTTP.Addr, cfg.HTTP.TLSAddr, cfg.RTMP.Addr, cfg.RTMP.TLSAddr, cfg.Metrics.Addr = "[::]:80", "[::]:443", "0.0.0.0:1935", "0.0.0.0:1936", "127.0.0.1:9935"
	var b strings.Builder
	printBanner(&b, cfg, "k3y")
	want := "onair is running\n" +
		"OBS server: rtmp://localhost:1935/live\n" +
		"OBS server over TLS: rtmps://localhost:1936/live\n" +
		"stream key: k3y\n" +
		"watch: https://localhost/watch/demo\n" +
		"plain http: http://localhost redirects to https\n" +
		"metrics: http://127.0.0.1:9935/metrics\n"
	if b.String() != want {
		t.Errorf("banner:\n%s\nwant:\n%s", b.String(), want)
	}
	cfg = defaultConfig()
	cfg.Metrics.Addr, cfg.HTTP.PublicURL = "", "https://live.example.com/"
	b.Reset()
	printBanner(&b, cfg, "")
	if want := "onair is running\nOBS server: rtmp://localhost:1935/live\nwatch: https://live.example.com/\nmetrics: off\n"; b.String() != want {
		t.Errorf("banner:\n%s\nwant:\n%s", b.String(), want)
	}
}
