package testenv

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// ACMEServer is Let's Encrypt's Pebble, a small ACME CA for tests, built by
// scripts/tools.sh, with Pebble's test DNS server answering 127.0.0.1 for every name, so
// that any domain a test asks a certificate for points at the test's own listeners.
type ACMEServer struct {
	*Server
	// Directory is the ACME directory URL, served over TLS with a certificate of CA.
	Directory string
	// CA signs the certificate of Pebble's own HTTPS: ACME clients must trust it
	// (SSL_CERT_FILE=CA.CAFile(t) for a Go program).
	CA *TestCA
	// Roots holds the root Pebble issues certificates under (a new one at every start).
	Roots *x509.CertPool
}

// ACMEOptions are where Pebble's validation authority connects to check challenges:
// TLSPort for TLS-ALPN-01 and HTTPPort for HTTP-01, on 127.0.0.1 (what every name resolves
// to). A real CA uses 443 and 80.
type ACMEOptions struct {
	TLSPort  int
	HTTPPort int
}

// StartACME starts Pebble and its DNS server.
func StartACME(t testing.TB, opts ACMEOptions) *ACMEServer {
	t.Helper()
	dnsPort, mgmtPort, dnsMgmtPort, acmePort := FreePort(t), FreePort(t), FreePort(t), FreePort(t)
	startServer(t, tool(t, "pebble-challtestsrv"), []string{
		"-dnsserver", "127.0.0.1:" + strconv.Itoa(dnsPort), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-management", "127.0.0.1:" + strconv.Itoa(dnsMgmtPort),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
	}, nil)

	ca := NewTestCA(t)
	leaf := ca.Issue(t, "127.0.0.1", "localhost")
	dir := t.TempDir()
	certFile, keyFile, configFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "pebble.json")
	leaf.WriteFiles(t, certFile, keyFile)
	config, err := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(acmePort),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(mgmtPort),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       opts.HTTPPort,
		"tlsPort":                        opts.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles":                       map[string]any{"default": map[string]any{"description": "test", "validityPeriod": 86400}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(configFile, config, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &ACMEServer{
		// No random sleeps before validating, no nonces refused on purpose: Pebble's
		// defaults test clients' patience, which is not what these tests are about.
		Server: startServer(t, tool(t, "pebble"), []string{"-config", configFile, "-dnsserver", "127.0.0.1:" + strconv.Itoa(dnsPort)},
			[]string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"}),
		Directory: fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort),
		CA:        ca,
		Roots:     x509.NewCertPool(),
	}
	client := ca.Client()
	Eventually(t, 20*time.Second, func() (bool, string) {
		resp, err := client.Get(s.Directory)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, "pebble: " + resp.Status
	})
	resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
	if err != nil {
		t.Fatalf("pebble's root: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("pebble's root: no PEM in %q", b)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("pebble's root: %v", err)
	}
	s.Roots.AddCert(root)
	return s
}
