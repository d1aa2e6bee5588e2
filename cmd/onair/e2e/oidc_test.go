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

	// Someone signed up locally with the provider user's email (onair never verified it:
	// it may be an attacker pre-claiming the victim's sign-ins). Signing in through the
	// provider does not open that account.
	local := newClient(t, o.HTTP)
	var ann meResponse
	local.must(http.StatusCreated, "POST", "/api/v1/auth/signup",
		map[string]string{"email": testenv.OIDCUserEmail, "handle": "ann", "password": "correct horse battery"}, &ann)
	victim := oidcBrowser(t)
	end, code, page := oidcFlow(t, victim, o.HTTP+"/api/v1/auth/oidc/login?next=/dashboard", op)
	if code != http.StatusConflict || !strings.Contains(page, "Link your account first") {
		t.Fatalf("sign-in with the email of a local account ended at %s (%d), want 409 asking to link:\n%s", end, code, page)
	}
	if resp, err := victim.Get(o.HTTP + "/api/v1/auth/me"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after the refused sign-in, who-am-I: %v %v, want 401", resp.Status, err)
	}

	// The account's owner logs in with its password and links the provider from inside;
	// from then on the provider signs in to that account, which stays admin.
	owner := oidcBrowser(t)
	loginJSON(t, owner, o.HTTP, "ann", "correct horse battery")
	if end, code, page := oidcFlow(t, owner, o.HTTP+"/api/v1/auth/oidc/login?link=1&next=/dashboard", op); code != http.StatusOK || end != o.HTTP+"/dashboard" {
		t.Fatalf("linking ended at %s (%d):\n%s", end, code, page)
	}
	first := oidcSignIn(t, o.HTTP, op)
	if first.User.ID != ann.User.ID || first.User.Handle != "ann" || !first.User.Admin {
		t.Fatalf("signed in as %+v, want the linked account %+v", first.User, ann.User)
	}
	// The local password still works.
	newClient(t, o.HTTP).must(http.StatusOK, "POST", "/api/v1/auth/login", map[string]string{"login": "ann", "password": "correct horse battery"}, nil)

	// An open redirect through next: browsers drop the tab and would go to
	// //evil.example. The sign-in lands on the dashboard instead, and the login page
	// does not carry the address.
	evil := "/%09/evil.example/x"
	if end, code, _ := oidcFlow(t, oidcBrowser(t), o.HTTP+"/api/v1/auth/oidc/login?next="+evil, op); code != http.StatusOK || end != o.HTTP+"/dashboard" {
		t.Fatalf("sign-in with next=%s ended at %s (%d), want the dashboard", evil, end, code)
	}
	if code, page := o.Get(t, "/login?next="+evil); code != http.StatusOK || strings.Contains(string(page), "evil.example") {
		t.Fatalf("login page with next=%s (%d) carries the address:\n%s", evil, code, page)
	}

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

// oidcBrowser is a fresh browser: a client with its own cookies, following redirects.
func oidcBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

// loginJSON logs hc in with a password through the API, as the login page's script does.
func loginJSON(t *testing.T, hc *http.Client, base, login, password string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"login": login, "password": password})
	req, err := http.NewRequest("POST", base+"/api/v1/auth/login", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("log in as %s: %d", login, resp.StatusCode)
	}
}

// oidcFlow goes through the provider as a person would, from start (an onair URL that
// sends the browser to the provider): the provider's login form posts the password and
// sends the browser back to onair. It returns where the browser ended, with the status
// and page there.
func oidcFlow(t *testing.T, hc *http.Client, start string, op *testenv.OIDCProvider) (string, int, string) {
	t.Helper()
	resp, err := hc.Get(start)
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
	return resp.Request.URL.String(), resp.StatusCode, string(page)
}

// oidcSignIn signs in as the provider's user in a fresh browser and checks that it lands
// on the dashboard signed in.
func oidcSignIn(t *testing.T, base string, op *testenv.OIDCProvider) meResponse {
	t.Helper()
	hc := oidcBrowser(t)
	if end, code, page := oidcFlow(t, hc, base+"/api/v1/auth/oidc/login?next=/dashboard", op); code != http.StatusOK || end != base+"/dashboard" {
		t.Fatalf("sign-in ended at %s (%d), want %s/dashboard:\n%s", end, code, base, page)
	}
	resp, err := hc.Get(base + "/api/v1/auth/me")
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
