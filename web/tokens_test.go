package web

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// API tokens over HTTP: no Origin and no CSRF token needed, the route's scope required, a
// session cookie sent along ignored, browser-only routes refused.
func TestBearerTokens(t *testing.T) {
	e := newEventsEnv(t)
	ann := e.client()
	ann.signUp("ann")
	var made struct {
		Secret string `json:"secret"`
		Token  struct {
			ID string `json:"id"`
		} `json:"token"`
	}
	ann.must(201, "POST", "/api/v1/tokens", map[string]any{"name": "reader", "scopes": []string{"rooms:read"}}, &made)
	reader := made.Secret
	ann.must(201, "POST", "/api/v1/tokens", map[string]any{"name": "writer", "scopes": []string{"rooms:read", "rooms:write"}, "expires_in_days": 7}, &made)
	writer := made.Secret

	bearer := func(secret, method, path, body string, withCookie bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		client := http.DefaultClient
		if withCookie {
			client = ann.http // ann's session cookie goes along, but no CSRF token
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	room := `{"slug":"ann-bot","title":"Bot room"}`
	if code, body := bearer(reader, "POST", "/api/v1/rooms", room, false); code != 403 || !strings.Contains(body, "rooms:write") {
		t.Errorf("rooms:read creates a room: %d %s", code, body)
	}
	if code, body := bearer(writer, "POST", "/api/v1/rooms", room, true); code != 201 {
		t.Errorf("rooms:write creates a room without Origin or CSRF token: %d %s", code, body)
	}
	if code, _ := bearer(reader, "GET", "/api/v1/rooms?owner=me", "", false); code != 200 {
		t.Errorf("rooms:read lists: %d", code)
	}
	if code, body := bearer(writer, "POST", "/api/v1/tokens", `{"name":"more","scopes":["rooms:read"]}`, false); code != 403 || !strings.Contains(body, "browser session") {
		t.Errorf("a token makes a token: %d %s", code, body)
	}
	if code, body := bearer(writer, "GET", "/api/v1/auth/me", "", false); code != 200 || !strings.Contains(body, `"token"`) || strings.Contains(body, "csrf_token") {
		t.Errorf("me with a token: %d %s", code, body)
	}
	if code, _ := bearer("onair_pat_nope", "GET", "/api/v1/rooms", "", true); code != 401 {
		t.Errorf("an unknown token with a good cookie: %d, want 401", code)
	}
	ann.must(204, "DELETE", "/api/v1/tokens/"+made.Token.ID, nil, nil)
	if code, _ := bearer(writer, "GET", "/api/v1/rooms", "", false); code != 401 {
		t.Errorf("a revoked token: %d, want 401", code)
	}
	// Without the token the cookie alone still needs the CSRF token.
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/rooms", strings.NewReader(`{"slug":"ann-csrf","title":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", e.srv.URL)
	resp, err := ann.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("a session without its CSRF token: %d, want 403", resp.StatusCode)
	}
}
