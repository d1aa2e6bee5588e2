package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// TestOIDCSignIn: sign-in through a real OpenID Connect provider (authorization code with
// PKCE), linked to the local account with the same verified email, the same account at
// every sign-in; a callback this browser did not start signs nobody in.
func TestOIDCSignIn(t *testing.T) {
	port := testenv.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	op := testenv.StartOIDCProvider(t, base+"/api/v1/auth/oidc/callback")
	o, _ := startWithMongo(t, fmt.Sprintf("ONAIR_HTTP_ADDR=127.0.0.1:%d", port),
		"ONAIR_AUTH_OIDC_ISSUER="+op.Issuer,
		"ONAIR_AUTH_OIDC_CLIENT_ID="+testenv.OIDCClientID,
		"ONAIR_AUTH_OIDC_CLIENT_SECRET="+testenv.OIDCClientSecret,
		"ONAIR_AUTH_OIDC_NAME=Zitadel")
	if o.HTTP != base {
		t.Fatalf("onair serves %s, want %s", o.HTTP, base)
	}
	if code, page := o.Get(t, "/login"); code != http.StatusOK || !strings.Contains(string(page), "Sign in with Zitadel") {
		t.Fatalf("login page (%d) does not offer the provider:\n%s", code, page)
	}

	// The provider's user already has a local account under the same (verified) email.
	local := newClient(t, o.HTTP)
	var ann meResponse
	local.must(http.StatusCreated, "POST", "/api/v1/auth/signup",
		map[string]string{"email": testenv.OIDCUserEmail, "handle": "ann", "password": "correct horse battery"}, &ann)

	first := oidcSignIn(t, o.HTTP, op)
	if first.User.ID != ann.User.ID || first.User.Handle != "ann" || !first.User.Admin {
		t.Fatalf("signed in as %+v, want the local account %+v", first.User, ann.User)
	}
	if again := oidcSignIn(t, o.HTTP, op); again.User.ID != ann.User.ID {
		t.Fatalf("second sign-in: %+v, want %+v", again.User, ann.User)
	}
	// The local password still works.
	newClient(t, o.HTTP).must(http.StatusOK, "POST", "/api/v1/auth/login", map[string]string{"login": "ann", "password": "correct horse battery"}, nil)

	// A forged callback: this browser started a sign-in, but the state is not its own.
	b := newClient(t, o.HTTP)
	code, h := b.do("GET", "/api/v1/auth/oidc/login?next=/dashboard", nil, nil)
	if code != http.StatusFound || !strings.HasPrefix(h.Get("Location"), op.Issuer) {
		t.Fatalf("login: %d to %q, want a redirect to the provider", code, h.Get("Location"))
	}
	if code, _ := b.do("GET", "/api/v1/auth/oidc/callback?code=stolen&state=forged", nil, nil); code != http.StatusBadRequest {
		t.Fatalf("forged callback: %d, want 400", code)
	}
	// And one this browser never started.
	if code, _ := newClient(t, o.HTTP).do("GET", "/api/v1/auth/oidc/callback?code=stolen&state=forged", nil, nil); code != http.StatusBadRequest {
		t.Fatalf("unsolicited callback: %d, want 400", code)
	}
	if code, _ := b.do("GET", "/api/v1/auth/me", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("after a refused callback, who-am-I answers %d, want 401", code)
	}
}

// oidcSignIn signs in as the provider's user in a fresh browser, as a person would: onair
// sends the browser to the provider's login form, the form posts the password, the
// provider sends the browser back to onair, which lands it on the dashboard.
func oidcSignIn(t *testing.T, base string, op *testenv.OIDCProvider) meResponse {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	resp, err := hc.Get(base + "/api/v1/auth/oidc/login?next=/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login/username" {
		t.Fatalf("sign-in start ended at %s (%d), want the provider's login form:\n%s", resp.Request.URL, resp.StatusCode, page)
	}
	resp, err = hc.PostForm(op.Issuer+"login/username", url.Values{
		"username": {testenv.OIDCUser}, "password": {testenv.OIDCPassword},
		"id": {resp.Request.URL.Query().Get("authRequestID")},
	})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != base+"/dashboard" {
		t.Fatalf("sign-in ended at %s (%d), want %s/dashboard:\n%s", resp.Request.URL, resp.StatusCode, base, page)
	}
	resp, err = hc.Get(base + "/api/v1/auth/me")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me meResponse
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("who am I after sign-in: %d %v", resp.StatusCode, err)
	}
	return me
}
