package testenv

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// OIDCProvider is an OpenID Connect provider for sign-in tests: the example server of
// zitadel/oidc (a certified OP library), built by scripts/tools.sh. It knows the
// confidential client "web" (secret "secret") and the user OIDCUser.
type OIDCProvider struct {
	*Server
	// Issuer is the provider's issuer URL (http://localhost:port/).
	Issuer string
}

// The provider's test account and client.
const (
	OIDCUser         = "test-user@localhost"
	OIDCPassword     = "verysecure"
	OIDCUserEmail    = "test-user@zitadel.ch" // verified
	OIDCClientID     = "web"
	OIDCClientSecret = "secret"
)

// StartOIDCProvider starts a provider that lets its client redirect to redirectURIs.
func StartOIDCProvider(t testing.TB, redirectURIs ...string) *OIDCProvider {
	t.Helper()
	port := strconv.Itoa(FreePort(t))
	s := startServer(t, tool(t, "oidc-provider"), nil, []string{
		"PORT=" + port,
		"REDIRECT_URI=" + strings.Join(redirectURIs, ","),
	})
	issuer := fmt.Sprintf("http://localhost:%s/", port)
	waitHTTP200(t, issuer+".well-known/openid-configuration", 20*time.Second)
	return &OIDCProvider{Server: s, Issuer: issuer}
}
