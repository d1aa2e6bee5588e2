package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// tlsSite is onair serving HTTPS and RTMPS itself, with a certificate of a test CA in
// files that a test may replace.
type tlsSite struct {
	o                 *testenv.Onair
	ca                *testenv.TestCA
	leaf              *testenv.Leaf
	certFile, keyFile string
}

// startTLS starts onair with MongoDB, HTTPS and RTMPS on free ports (plain HTTP
// redirecting to HTTPS), with a certificate for 127.0.0.1 and localhost.
func startTLS(t *testing.T, extra ...string) *tlsSite {
	t.Helper()
	s := &tlsSite{ca: testenv.NewTestCA(t)}
	dir := t.TempDir()
	s.certFile, s.keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	s.leaf = s.ca.Issue(t, "127.0.0.1", "localhost")
	s.leaf.WriteFiles(t, s.certFile, s.keyFile)
	m := testenv.StartMongoDB(t)
	s.o = testenv.StartOnair(t, testenv.OnairOptions{Client: s.ca.Client(), Env: append([]string{
		"ONAIR_MONGO_URI=" + m.URI, "ONAIR_MONGO_DATABASE=onair",
		"ONAIR_HTTP_TLS_ADDR=127.0.0.1:0", "ONAIR_RTMP_TLS_ADDR=127.0.0.1:0",
		"ONAIR_TLS_CERT_FILE=" + s.certFile, "ONAIR_TLS_KEY_FILE=" + s.keyFile,
	}, extra...)})
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		return s.o.LogsContain("MongoDB ready"), "waiting for indexes"
	})
	return s
}

// client is an API client of the HTTPS site.
func (s *tlsSite) client(t *testing.T) *client {
	c := newClient(t, s.o.HTTP)
	c.http.Transport = s.ca.Client().Transport
	return c
}

// served is the certificate a TLS handshake with addr gets, trusting the test CA.
func (s *tlsSite) served(addr string) (*tls.Certificate, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: s.ca.TLSConfig()}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	peer := c.(*tls.Conn).ConnectionState().PeerCertificates
	return &tls.Certificate{Leaf: peer[0]}, nil
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestTLS: onair's own HTTPS and RTMPS. ffmpeg publishes over rtmps:// (checking the
// certificate against the test CA), the stream plays over HTTPS with HTTP/2, plain HTTP
// redirects, cookies are Secure, HSTS is sent, a replaced certificate reaches new
// handshakes without a restart, and RTMPS connections count against the RTMP limits and
// the setup deadline like plain ones.
func TestTLS(t *testing.T) {
	s := startTLS(t, "ONAIR_RTMP_MAX_CONNECTIONS=2", "ONAIR_RTMP_SETUP_TIMEOUT=4s")
	o := s.o
	if !strings.HasPrefix(o.HTTP, "https://") || !strings.HasPrefix(o.RTMPS, "rtmps://") || !strings.HasPrefix(o.Plain, "http://") {
		t.Fatalf("banner: watch %q, rtmps %q, plain http %q", o.HTTP, o.RTMPS, o.Plain)
	}

	// Plain HTTP redirects to the same path over HTTPS, keeping the method.
	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, o.Plain+"/rooms/some-room?x=1", nil)
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := o.HTTP + "/rooms/some-room?x=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("%s over plain http: %d to %q, want 308 to %q", method, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if resp.Header.Get("Strict-Transport-Security") != "" {
			t.Error("HSTS over plain http (browsers ignore it there; a sign of a confused listener)")
		}
	}

	// HTTPS: HTTP/2, HSTS on every response.
	resp, err := o.Client.Get(o.HTTP + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("HTTPS answered over %s, want HTTP/2", resp.Proto)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security %q, want max-age=31536000", got)
	}
	if code, _ := o.Get(t, "/metrics"); code != http.StatusNotFound {
		t.Errorf("HTTPS answers /metrics with %d, want 404", code)
	}

	// The session cookie is Secure; the room offers RTMPS.
	ann := s.client(t)
	var me meResponse
	h := ann.must(http.StatusCreated, "POST", "/api/v1/auth/signup",
		map[string]string{"email": "ann@example.com", "handle": "ann", "password": "correct horse battery"}, &me)
	ann.csrf = me.CSRFToken
	if c := h.Get("Set-Cookie"); !strings.Contains(c, "onair_session=") || !strings.Contains(c, "; Secure") {
		t.Errorf("session cookie over HTTPS is not Secure: %q", c)
	}
	_, key := ann.createRoom("ann-tls")
	var room struct {
		RTMPURL  string `json:"rtmp_url"`
		RTMPSURL string `json:"rtmps_url"`
	}
	ann.must(http.StatusOK, "GET", "/api/v1/rooms/ann-tls", nil, &room)
	if room.RTMPSURL != o.RTMPS || !strings.HasPrefix(room.RTMPURL, "rtmp://") {
		t.Fatalf("room offers rtmp %q and rtmps %q, want rtmps %q", room.RTMPURL, room.RTMPSURL, o.RTMPS)
	}

	// ffmpeg publishes over RTMPS, verifying onair's certificate against the test CA.
	pub := testenv.Publish(t, room.RTMPSURL+"/"+key, testenv.PublishOptions{
		ExtraArgs: []string{"-tls_verify", "1", "-ca_file", s.ca.CAFile(t)},
	})
	defer pub.Kill()
	index := o.HTTP + "/live/ann-tls/index.m3u8"
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		select {
		case <-pub.Done():
			return false, "ffmpeg exited: " + pub.Stderr()
		default:
		}
		code, _ := o.Get(t, "/live/ann-tls/index.m3u8")
		return code == http.StatusOK, fmt.Sprintf("playlist: %d", code)
	})
	r := readHLS(t, index, withHTTPClient(s.ca.Client()))
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		v, a, problems := r.snapshot()
		if len(problems) > 0 {
			return false, strings.Join(problems, "; ")
		}
		return v >= 60 && a > 0, fmt.Sprintf("%d video and %d audio frames over HTTPS", v, a)
	})

	// A new certificate in the files reaches new handshakes, HTTPS and RTMPS alike.
	old := s.leaf.Cert.SerialNumber
	renewed := s.ca.Issue(t, "127.0.0.1", "localhost")
	renewed.WriteFiles(t, s.certFile, s.keyFile)
	for _, addr := range []string{hostOf(t, o.HTTP), hostOf(t, o.RTMPS)} {
		testenv.Eventually(t, 15*time.Second, func() (bool, string) {
			c, err := s.served(addr)
			if err != nil {
				return false, err.Error()
			}
			if c.Leaf.SerialNumber.Cmp(renewed.Cert.SerialNumber) != 0 {
				return false, fmt.Sprintf("%s serves serial %s (old: %s)", addr, c.Leaf.SerialNumber, old)
			}
			return true, ""
		})
	}
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		return o.LogsContain("TLS certificate reloaded"), "the reload is not logged"
	})
	before, _, _ := r.snapshot()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		v, _, _ := r.snapshot()
		return v > before+30, "the publisher keeps going across the reload"
	})

	// The publisher holds one of the two connections; an RTMPS client that never starts
	// its TLS handshake takes the other, and a third is turned away at once.
	rtmpsAddr := hostOf(t, o.RTMPS)
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		_, body := o.GetMetrics(t)
		return strings.Contains(string(body), "onair_rtmp_connections 1\n"), "waiting for the certificate probes' connections to close"
	})
	idle, err := net.Dial("tcp", rtmpsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		_, body := o.GetMetrics(t)
		return strings.Contains(string(body), "onair_rtmp_connections 2\n"), "waiting for 2 RTMP connections"
	})
	third, err := net.Dial("tcp", rtmpsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if err := closedByServer(third, 20*time.Second); err != nil {
		t.Errorf("a connection over the limit: %v", err)
	}
	// The silent one is dropped at rtmp.setup_timeout: the handshake is part of the setup.
	if err := closedByServer(idle, 30*time.Second); err != nil {
		t.Errorf("a client that never completes the TLS handshake: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		_, body := o.GetMetrics(t)
		m := string(body)
		return strings.Contains(m, `onair_rtmp_refused_total{reason="too_many_connections"} 1`) &&
			strings.Contains(m, `onair_rtmp_refused_total{reason="timeout"} 1`), "refusals not counted yet"
	})
	select {
	case <-pub.Done():
		t.Fatalf("ffmpeg stopped: %s", pub.Stderr())
	default:
	}
}

// closedByServer waits until the server closes c, failing after bound: a safety net, not
// a measure of time.
func closedByServer(c net.Conn, bound time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(bound))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case err == nil:
		return errors.New("the server sent data")
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("still open after %s", bound)
	case errors.Is(err, io.EOF), errors.Is(err, os.ErrClosed), strings.Contains(err.Error(), "connection reset"):
		return nil
	}
	return err
}

// TestTLSBrowser: Chromium over onair's own HTTPS (web/ui/e2e/tls.mjs): plain HTTP
// redirects, HSTS is sent, the session cookie is Secure, the dashboard offers RTMPS, a
// viewer plays the room that ffmpeg publishes over RTMPS, and chat works over wss.
func TestTLSBrowser(t *testing.T) {
	chromium := browserDeps(t)
	s := startTLS(t)
	runBrowserScript(t, "tls.mjs", []string{
		"ONAIR_URL=" + s.o.HTTP, "ONAIR_PLAIN_URL=" + s.o.Plain, "ONAIR_SPKI=" + s.leaf.SPKIHash(), "CHROMIUM=" + chromium,
	}, func(command string, args []string) string {
		if command != "@publish" || len(args) != 2 || !strings.HasPrefix(args[0], "rtmps://") {
			t.Fatalf("the scenario asked for %s %v", command, args)
		}
		testenv.Publish(t, args[0]+"/"+args[1], testenv.PublishOptions{Size: "640x360"})
		return "ok"
	})
}

// TestACME: certificates from an ACME CA (Pebble) for a domain, obtained by onair at the
// first handshake naming it, through TLS-ALPN-01 on the HTTPS listener, or through
// HTTP-01 on the plain one when the CA finds nothing on the TLS port; kept in data.dir,
// so that the next start serves them without the CA.
func TestACME(t *testing.T) {
	const domain = "live.onair.test" // Pebble's DNS answers 127.0.0.1 for every name
	for _, challenge := range []string{"tls-alpn-01", "http-01"} {
		t.Run(challenge, func(t *testing.T) {
			tlsPort, httpPort := testenv.FreePort(t), testenv.FreePort(t)
			caTLSPort := tlsPort
			if challenge == "http-01" {
				caTLSPort = testenv.FreePort(t) // nothing listens there: TLS-ALPN-01 fails
			}
			ca := testenv.StartACME(t, testenv.ACMEOptions{TLSPort: caTLSPort, HTTPPort: httpPort})
			client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{ServerName: domain, RootCAs: ca.Roots, MinVersion: tls.VersionTLS12}}}
			opts := testenv.OnairOptions{Client: client, Env: []string{
				fmt.Sprintf("ONAIR_HTTP_ADDR=127.0.0.1:%d", httpPort), fmt.Sprintf("ONAIR_HTTP_TLS_ADDR=127.0.0.1:%d", tlsPort),
				"ONAIR_TLS_ACME_DOMAINS=[" + domain + "]", "ONAIR_TLS_ACME_DIRECTORY=" + ca.Directory,
				"ONAIR_TLS_ACME_EMAIL=ops@onair.test",
				// onair reaches Pebble's API over TLS with a certificate of the test's CA.
				"SSL_CERT_FILE=" + ca.CA.CAFile(t),
			}}
			// StartOnair's first request names the domain: onair gets the certificate then.
			o := testenv.StartOnair(t, opts)
			served := func() *x509.Certificate {
				resp, err := client.Get(o.HTTP + "/healthz")
				if err != nil {
					t.Fatalf("HTTPS with the ACME certificate: %v", err)
				}
				resp.Body.Close()
				if got := resp.Header.Get("Strict-Transport-Security"); got == "" {
					t.Error("no HSTS")
				}
				return resp.TLS.PeerCertificates[0]
			}
			leaf := served()
			if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != domain {
				t.Errorf("certificate for %v, want %s", leaf.DNSNames, domain)
			}
			if entries, err := os.ReadDir(filepath.Join(o.DataDir, "acme")); err != nil || len(entries) == 0 {
				t.Errorf("nothing cached in data.dir/acme: %v", err)
			}

			// The plain port redirects to the domain's HTTPS.
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/watch/x", httpPort), nil)
			req.Host = domain
			plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := fmt.Sprintf("https://%s:%d/watch/x", domain, tlsPort); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
				t.Errorf("plain http: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
			}

			// Without the CA, a restart serves the certificate kept in data.dir.
			ca.Kill()
			o.Stop(t)
			opts.DataDir = o.DataDir
			o = testenv.StartOnair(t, opts)
			if again := served(); !again.Equal(leaf) {
				t.Errorf("after a restart: certificate serial %s, want the cached %s", again.SerialNumber, leaf.SerialNumber)
			}
		})
	}
}
