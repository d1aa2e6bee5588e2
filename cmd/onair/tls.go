package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// tlsConfig is the tls section: the certificate that HTTPS (http.tls_addr) and RTMPS
// (rtmp.tls_addr) present, from files or from an ACME CA such as Let's Encrypt.
type tlsConfig struct {
	CertFile      string   `yaml:"cert_file"`
	KeyFile       string   `yaml:"key_file"`
	ACMEDomains   []string `yaml:"acme_domains"`
	ACMEEmail     string   `yaml:"acme_email"`
	ACMEDirectory string   `yaml:"acme_directory"`
}

// acmeDomainRE is a DNS name of two labels or more: ACME CAs issue for nothing else, and
// TLS-ALPN-01 and HTTP-01 cannot prove a wildcard.
var acmeDomainRE = regexp.MustCompile(`^(?i:[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.(?i:[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?))+$`)

// validateListeners checks the TLS, HTTPS, RTMPS and metrics settings.
func (c *config) validateListeners(bad func(key, format string, args ...any), checkAddr func(key, addr string), checkURL func(key, u string, schemes ...string)) {
	addrs := []struct{ key, addr string }{
		{"http.addr", c.HTTP.Addr}, {"rtmp.addr", c.RTMP.Addr}, // checked by validate
		{"http.tls_addr", c.HTTP.TLSAddr}, {"rtmp.tls_addr", c.RTMP.TLSAddr}, {"metrics.addr", c.Metrics.Addr},
	}
	for _, l := range addrs[2:] {
		if l.addr != "" {
			checkAddr(l.key, l.addr)
		}
	}
	if c.HTTP.Addr == "" && c.HTTP.TLSAddr == "" {
		bad("http.addr", "must be set unless http.tls_addr is: onair would serve no pages and no HLS")
	}
	for i, a := range addrs {
		for _, b := range addrs[:i] {
			if sameSocket(a.addr, b.addr) {
				bad(a.key, "listens on %s, as %s does (%s)", a.addr, b.key, b.addr)
			}
		}
	}
	if c.HTTP.HSTSMaxAge < 0 {
		bad("http.hsts_max_age", "must be 0 (no header) or a positive duration, got %s", c.HTTP.HSTSMaxAge)
	}

	t := &c.TLS
	files := t.CertFile != "" || t.KeyFile != ""
	acmeOn := len(t.ACMEDomains) > 0
	tlsListeners := c.HTTP.TLSAddr != "" || c.RTMP.TLSAddr != ""
	switch {
	case files && acmeOn:
		bad("tls.acme_domains", "set either tls.cert_file and tls.key_file, or tls.acme_domains, not both")
	case files && t.CertFile == "":
		bad("tls.cert_file", "is required with tls.key_file")
	case files && t.KeyFile == "":
		bad("tls.key_file", "is required with tls.cert_file")
	}
	if tlsListeners && !files && !acmeOn {
		key := "http.tls_addr"
		if c.HTTP.TLSAddr == "" {
			key = "rtmp.tls_addr"
		}
		bad(key, "needs a certificate: set tls.cert_file and tls.key_file, or tls.acme_domains")
	}
	if !tlsListeners && (files || acmeOn) {
		key := "tls.cert_file"
		if !files {
			key = "tls.acme_domains"
		}
		bad(key, "is set, but no listener uses TLS: set http.tls_addr, rtmp.tls_addr or both")
	}
	for i, d := range t.ACMEDomains {
		if !acmeDomainRE.MatchString(d) || len(d) > 253 || net.ParseIP(d) != nil {
			bad(fmt.Sprintf("tls.acme_domains[%d]", i), "must be a DNS name such as live.example.com (no scheme, port, IP address or wildcard), got %q", d)
		}
	}
	if !acmeOn && (t.ACMEEmail != "" || t.ACMEDirectory != "") {
		key := "tls.acme_email"
		if t.ACMEEmail == "" {
			key = "tls.acme_directory"
		}
		bad(key, "is set without tls.acme_domains")
	}
	if t.ACMEEmail != "" && (!strings.Contains(t.ACMEEmail, "@") || strings.ContainsAny(t.ACMEEmail, " \t\r\n")) {
		bad("tls.acme_email", "must be an email address, got %q", t.ACMEEmail)
	}
	checkURL("tls.acme_directory", t.ACMEDirectory, "https")
	if c.HTTP.TLSAddr != "" && strings.HasPrefix(c.HTTP.PublicURL, "http://") {
		bad("http.public_url", "must be an https URL when onair serves HTTPS (http.tls_addr), got %q", c.HTTP.PublicURL)
	}
	if c.HTTP.TLSAddr != "" && strings.HasPrefix(c.Node.AdvertiseURL, "http://") {
		bad("node.advertise_url", "must be an https URL when onair serves HTTPS (http.tls_addr): the plain port only redirects, got %q", c.Node.AdvertiseURL)
	}
	if c.RTMP.TLSPublicURL != "" && c.RTMP.TLSAddr == "" {
		bad("rtmp.tls_public_url", "is set without rtmp.tls_addr")
	}
	checkURL("rtmp.tls_public_url", c.RTMP.TLSPublicURL, "rtmps")
}

// sameSocket reports whether two listen addresses would take the same port. Port 0 (the
// system picks one) never clashes.
func sameSocket(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wildcard(ha) || wildcard(hb)
}

// certSource gives the TLS listeners their certificate: from files, reloaded when they
// change, or from an ACME CA through autocert.
type certSource struct {
	files *certFiles        // with tls.cert_file
	acme  *autocert.Manager // with tls.acme_domains
}

// newCertSource builds the configured source, or returns nil when no listener uses TLS.
// Certificate files are loaded here, so that a missing or broken one stops onair at start.
func newCertSource(cfg config, log *slog.Logger) (*certSource, error) {
	t := cfg.TLS
	switch {
	case t.CertFile != "":
		f, err := loadCertFiles(t.CertFile, t.KeyFile, log)
		if err != nil {
			return nil, err
		}
		return &certSource{files: f}, nil
	case len(t.ACMEDomains) > 0:
		dir := filepath.Join(cfg.Data.Dir, "acme")
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			Cache:      autocert.DirCache(dir),
			HostPolicy: autocert.HostWhitelist(t.ACMEDomains...),
			Email:      t.ACMEEmail,
		}
		if t.ACMEDirectory != "" {
			m.Client = &acme.Client{DirectoryURL: t.ACMEDirectory}
		}
		log.Info("TLS certificates from ACME", "domains", t.ACMEDomains, "directory", orDefault(t.ACMEDirectory, autocert.DefaultACMEDirectory),
			"cache", dir)
		if _, port, _ := net.SplitHostPort(cfg.HTTP.TLSAddr); port != "443" {
			if _, plain, _ := net.SplitHostPort(cfg.HTTP.Addr); plain != "80" {
				log.Warn("the ACME CA proves the domains on port 443 (TLS-ALPN-01) or 80 (HTTP-01): forward one of them to http.tls_addr or http.addr",
					"http.tls_addr", cfg.HTTP.TLSAddr, "http.addr", cfg.HTTP.Addr)
			}
		}
		return &certSource{acme: m}, nil
	}
	return nil, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (s *certSource) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s.acme != nil {
		return s.acme.GetCertificate(hello)
	}
	return s.files.GetCertificate(hello)
}

// httpsConfig is the HTTPS listener's: HTTP/2 and HTTP/1.1, and the ACME CA's TLS-ALPN-01
// challenge, which autocert answers in GetCertificate.
func (s *certSource) httpsConfig() *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if s.acme != nil {
		protos = append(protos, acme.ALPNProto)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.getCertificate, NextProtos: protos}
}

// rtmpsConfig is the RTMPS listener's. It names no application protocol: encoders offer
// none, and a server that names some refuses clients offering others.
func (s *certSource) rtmpsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.getCertificate}
}

// plainHandler is what the plain HTTP port serves while HTTPS is on: the ACME CA's
// HTTP-01 challenges, and a redirect to HTTPS for everything else.
func (s *certSource) plainHandler(redirect http.Handler) http.Handler {
	if s.acme == nil {
		return redirect
	}
	challenges := s.acme.HTTPHandler(redirect)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// autocert checks the Host header against tls.acme_domains as it is, and a Host
		// with a port (live.example.com:80, or the port a CA was told to use) names the
		// same host.
		if host, _, err := net.SplitHostPort(r.Host); err == nil {
			r = r.Clone(r.Context())
			r.Host = host
		}
		challenges.ServeHTTP(w, r)
	})
}

// httpsRedirect sends a plain HTTP request to the same path over HTTPS: to http.public_url
// when set, else to the host the browser asked for, on the HTTPS port.
type httpsRedirect struct {
	publicURL *url.URL // nil when http.public_url is empty
	port      string   // the HTTPS listener's port
}

func (h httpsRedirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var target url.URL
	if h.publicURL != nil {
		target = url.URL{Scheme: "https", Host: h.publicURL.Host}
	} else {
		host := (&url.URL{Host: r.Host}).Hostname()
		if host == "" {
			http.Error(w, "this port redirects to https: the request names no host", http.StatusBadRequest)
			return
		}
		target = url.URL{Scheme: "https", Host: host}
		if h.port != "443" {
			target.Host = net.JoinHostPort(host, h.port)
		}
	}
	// 308 keeps the method and body, so an API call made over http is repeated over https
	// rather than turned into a GET.
	http.Redirect(w, r, target.String()+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// certCheckEvery is how often a handshake looks at the certificate files: a renewal
// (certbot, cert-manager, a copied file) reaches new connections within it, without a
// restart and without a stat per handshake.
const certCheckEvery = time.Second

// certFiles serves the certificate in a PEM certificate file and key file, reloading both
// when either changes. A pair that does not load (one file written, the other not yet)
// leaves the previous certificate in use until the files change again.
type certFiles struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp // of the files as last read, loaded or not
	checked time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func loadCertFiles(certFile, keyFile string, log *slog.Logger) (*certFiles, error) {
	f := &certFiles{certFile: certFile, keyFile: keyFile, log: log.With("component", "tls"), checked: time.Now()}
	stamp, err := f.stat()
	if err != nil {
		return nil, err
	}
	cert, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cert, f.stamp = cert, stamp
	f.logLoaded("TLS certificate loaded", cert)
	return f, nil
}

// GetCertificate is tls.Config's hook: the current certificate, reloaded first when the
// files changed since the last look.
func (f *certFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := time.Now(); now.Sub(f.checked) >= certCheckEvery {
		f.checked = now
		f.reloadLocked()
	}
	return f.cert, nil
}

func (f *certFiles) reloadLocked() {
	stamp, err := f.stat()
	if err != nil {
		if stamp != f.stamp {
			f.log.Warn("TLS certificate files unreadable; still serving the previous certificate", "err", err)
			f.stamp = stamp
		}
		return
	}
	if stamp == f.stamp {
		return
	}
	f.stamp = stamp
	cert, err := f.load()
	if err != nil {
		f.log.Warn("TLS certificate files changed but do not load; still serving the previous certificate", "err", err)
		return
	}
	f.cert = cert
	f.logLoaded("TLS certificate reloaded", cert)
}

func (f *certFiles) stat() ([2]fileStamp, error) {
	var out [2]fileStamp
	var errs []error
	for i, p := range []struct{ key, path string }{{"tls.cert_file", f.certFile}, {"tls.key_file", f.keyFile}} {
		fi, err := os.Stat(p.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.key, err))
			continue
		}
		out[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return out, errors.Join(errs...)
}

func (f *certFiles) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(f.certFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// X509KeyPair's errors name neither file (and hold no key material).
		return nil, fmt.Errorf("tls.cert_file %s with tls.key_file %s: %w", f.certFile, f.keyFile, err)
	}
	return &cert, nil
}

func (f *certFiles) logLoaded(msg string, cert *tls.Certificate) {
	leaf := cert.Leaf
	if leaf == nil {
		return
	}
	ips := make([]string, 0, len(leaf.IPAddresses))
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	attrs := []any{"file", f.certFile, "dns_names", leaf.DNSNames, "ip_addresses", ips,
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "serial", leaf.SerialNumber.String()}
	if time.Now().After(leaf.NotAfter) {
		f.log.Warn(msg+", but it has expired: clients will refuse it", attrs...)
		return
	}
	f.log.Info(msg, attrs...)
}
