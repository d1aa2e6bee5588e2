package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"onair/scripts/testenv"
)

// client is a browser-like API client: a cookie jar, the site's Origin on every request
// and the CSRF token once signed in.
type client struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
	// origin overrides the Origin header (a cross-site attacker's page).
	origin string
}

func newClient(t *testing.T, base string) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a JSON request and decodes the JSON answer into out (when not nil).
func (c *client) do(method, path string, body any, out any) (int, http.Header) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	origin := c.origin
	if origin == "" {
		origin = c.base
	}
	req.Header.Set("Origin", origin)
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %d %s: decode: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, resp.Header
}

// must fails the test unless the request answers want.
func (c *client) must(want int, method, path string, body any, out any) http.Header {
	c.t.Helper()
	var raw json.RawMessage
	code, h := c.do(method, path, body, &raw)
	if code != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, code, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatal(err)
		}
	}
	return h
}

type apiUser struct {
	ID     string `json:"id"`
	Handle string `json:"handle"`
	Admin  bool   `json:"admin"`
}

type meResponse struct {
	User      apiUser `json:"user"`
	CSRFToken string  `json:"csrf_token"`
}

type apiErr struct {
	Error struct {
		Code  string `json:"code"`
		Field string `json:"field"`
	} `json:"error"`
}

func (c *client) signUp(handle string) apiUser {
	c.t.Helper()
	var me meResponse
	c.must(http.StatusCreated, "POST", "/api/v1/auth/signup",
		map[string]string{"email": handle + "@example.com", "handle": handle, "password": "correct horse battery"}, &me)
	c.csrf = me.CSRFToken
	return me.User
}

type apiRoom struct {
	ID         string    `json:"id"`
	Slug       string    `json:"slug"`
	Title      string    `json:"title"`
	Visibility string    `json:"visibility"`
	Live       bool      `json:"live"`
	Viewers    int       `json:"viewers"`
	RTMPURL    string    `json:"rtmp_url"`
	HLSURL     string    `json:"hls_url"`
	Owner      apiUser   `json:"owner"`
	Moderators []apiUser `json:"moderators"`
}

func (c *client) createRoom(slug string) (apiRoom, string) {
	c.t.Helper()
	var out struct {
		Room      apiRoom `json:"room"`
		StreamKey string  `json:"stream_key"`
	}
	c.must(http.StatusCreated, "POST", "/api/v1/rooms", map[string]any{"slug": slug, "title": "Room " + slug}, &out)
	if len(out.StreamKey) < 32 || out.Room.RTMPURL == "" {
		c.t.Fatalf("created room %+v with key of %d characters", out.Room, len(out.StreamKey))
	}
	return out.Room, out.StreamKey
}

// startWithMongo starts FerretDB and onair using it.
func startWithMongo(t *testing.T, extra ...string) (*testenv.Onair, *testenv.MongoDB) {
	t.Helper()
	m := testenv.StartMongoDB(t)
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: append([]string{
		"ONAIR_MONGO_URI=" + m.URI, "ONAIR_MONGO_DATABASE=onair",
	}, extra...)})
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		return o.LogsContain("MongoDB ready"), "waiting for indexes"
	})
	return o, m
}

func TestAccounts(t *testing.T) {
	o, _ := startWithMongo(t)
	c := newClient(t, o.HTTP)

	// Cookie attributes: httpOnly, SameSite=Lax, not readable by page JavaScript.
	var me meResponse
	h := c.must(http.StatusCreated, "POST", "/api/v1/auth/signup",
		map[string]string{"email": "Ann@Example.com", "handle": "ann", "password": "correct horse battery"}, &me)
	cookie := h.Get("Set-Cookie")
	for _, attr := range []string{"onair_session=", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("session cookie %q lacks %s", cookie, attr)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("Secure cookie over plain http: %q", cookie)
	}
	if !me.User.Admin || me.CSRFToken == "" {
		t.Fatalf("first account = %+v", me)
	}
	c.csrf = me.CSRFToken
	c.must(http.StatusOK, "GET", "/api/v1/auth/me", nil, &me)
	if me.User.Handle != "ann" {
		t.Fatalf("who am I = %+v", me.User)
	}

	// Second account is no admin; duplicates and bad input are refused with a field.
	bob := newClient(t, o.HTTP)
	if u := bob.signUp("bob"); u.Admin {
		t.Fatal("second account is admin")
	}
	var e apiErr
	anon := newClient(t, o.HTTP)
	if code, _ := anon.do("POST", "/api/v1/auth/signup", map[string]string{"email": "ann@example.com", "handle": "ann2", "password": "correct horse battery"}, &e); code != 409 || e.Error.Field != "email" {
		t.Fatalf("duplicate email: %d %+v", code, e)
	}
	if code, _ := anon.do("POST", "/api/v1/auth/signup", map[string]string{"email": "x@example.com", "handle": "x", "password": "short"}, &e); code != 400 {
		t.Fatalf("bad sign-up: %d", code)
	}
	if code, _ := anon.do("POST", "/api/v1/auth/signup", map[string]any{"email": "y@example.com", "handle": "yyy", "password": "correct horse battery", "admin": true}, &e); code != 400 || e.Error.Field != "admin" {
		t.Fatalf("unknown field: %d %+v", code, e)
	}

	// One address makes at most auth.signup_limit (5) accounts per hour: ann, bob and
	// three more; the next is refused with a Retry-After.
	for _, handle := range []string{"carol", "dave", "erin"} {
		newClient(t, o.HTTP).signUp(handle)
	}
	code, hdr := anon.do("POST", "/api/v1/auth/signup", map[string]string{"email": "f@example.com", "handle": "frank", "password": "correct horse battery"}, &e)
	if code != http.StatusTooManyRequests || e.Error.Code != "rate_limited" || hdr.Get("Retry-After") == "" {
		t.Fatalf("6th sign-up from one address: %d %+v (Retry-After %q), want 429", code, e, hdr.Get("Retry-After"))
	}

	// CSRF: a cross-site Origin, or a signed-in request without the token, is refused.
	evil := *c
	evil.origin = "https://evil.example"
	if code, _ := evil.do("POST", "/api/v1/rooms", map[string]any{"slug": "evil", "title": "x"}, &e); code != 403 || e.Error.Code != "csrf" {
		t.Fatalf("cross-site request: %d %+v", code, e)
	}
	noToken := *c
	noToken.csrf = ""
	if code, _ := noToken.do("POST", "/api/v1/rooms", map[string]any{"slug": "evil", "title": "x"}, &e); code != 403 || e.Error.Code != "csrf" {
		t.Fatalf("request without CSRF token: %d %+v", code, e)
	}

	// Wrong password; log out revokes the session server-side.
	if code, _ := anon.do("POST", "/api/v1/auth/login", map[string]string{"login": "ann", "password": "wrong password!"}, &e); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	again := newClient(t, o.HTTP)
	again.must(http.StatusOK, "POST", "/api/v1/auth/login", map[string]string{"login": "ANN@example.com", "password": "correct horse battery"}, &me)
	again.csrf = me.CSRFToken
	stolen := again.http.Jar.Cookies(mustURL(t, o.HTTP))
	again.must(http.StatusNoContent, "POST", "/api/v1/auth/logout", nil, nil)
	replay := newClient(t, o.HTTP)
	replay.http.Jar.SetCookies(mustURL(t, o.HTTP), stolen)
	if code, _ := replay.do("GET", "/api/v1/auth/me", nil, &e); code != 401 {
		t.Fatalf("session after logout: %d", code)
	}

	// Login attempts are rate limited per account.
	limited := 0
	for range 8 {
		code, h := anon.do("POST", "/api/v1/auth/login", map[string]string{"login": "bob", "password": "not the password"}, &e)
		if code == 429 {
			limited++
			if h.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		}
	}
	if limited == 0 {
		t.Fatal("8 wrong passwords in a row were never rate limited")
	}
	if o.LogsContain("correct horse battery") || o.LogsContain(me.CSRFToken) {
		t.Fatal("a password or token appears in the logs")
	}
}

func TestRoomsAndPermissions(t *testing.T) {
	o, _ := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	bob := newClient(t, o.HTTP)
	bob.signUp("bob")
	anon := newClient(t, o.HTTP)

	room, key := ann.createRoom("ann-live")
	var e apiErr
	if code, _ := anon.do("POST", "/api/v1/rooms", map[string]any{"slug": "anon", "title": "x"}, &e); code != 401 {
		t.Fatalf("anonymous create: %d", code)
	}
	if code, _ := ann.do("POST", "/api/v1/rooms", map[string]any{"slug": "ann-live", "title": "x"}, &e); code != 409 {
		t.Fatalf("duplicate slug: %d", code)
	}
	if code, _ := ann.do("POST", "/api/v1/rooms", map[string]any{"slug": "a", "title": "x"}, &e); code != 400 || e.Error.Field != "slug" {
		t.Fatalf("bad slug: %d %+v", code, e)
	}
	if code, _ := ann.do("POST", "/api/v1/rooms", map[string]any{"slug": "okay-slug", "title": "x", "visibility": "secret"}, &e); code != 400 {
		t.Fatalf("bad visibility: %d", code)
	}

	// Others see the room but not how to publish to it; the key never appears again.
	var seen apiRoom
	bob.must(200, "GET", "/api/v1/rooms/ann-live", nil, &seen)
	if seen.RTMPURL != "" || seen.Owner.Handle != "ann" {
		t.Fatalf("room as bob sees it: %+v", seen)
	}
	var raw json.RawMessage
	ann.must(200, "GET", "/api/v1/rooms/ann-live", nil, &raw)
	if bytes.Contains(raw, []byte(key)) {
		t.Fatal("the stream key is shown again after creation")
	}
	// A non-owner cannot update, delete, rotate or appoint.
	for _, req := range []struct{ method, path string }{
		{"PATCH", "/api/v1/rooms/ann-live"}, {"DELETE", "/api/v1/rooms/ann-live"},
		{"POST", "/api/v1/rooms/ann-live/stream-key"}, {"POST", "/api/v1/rooms/ann-live/moderators"},
	} {
		var body any
		switch req.method {
		case "PATCH":
			body = map[string]any{"title": "stolen"}
		case "POST":
			if strings.HasSuffix(req.path, "moderators") {
				body = map[string]any{"handle": "bob"}
			}
		}
		if code, _ := bob.do(req.method, req.path, body, &raw); code != 403 {
			t.Errorf("bob %s %s: %d %s, want 403", req.method, req.path, code, raw)
		}
	}
	var updated privateRoom
	ann.must(200, "PATCH", "/api/v1/rooms/ann-live", map[string]any{"title": "Ann's stream", "visibility": "unlisted"}, &updated)
	if updated.Title != "Ann's stream" || updated.Visibility != "unlisted" || updated.HLSURL != "/live/"+updated.PlaybackID+"/index.m3u8" {
		t.Fatalf("updated = %+v", updated)
	}
	pid := updated.PlaybackID // an unlisted room's address, its stream's name
	if code, _ := ann.do("PATCH", "/api/v1/rooms/ann-live", map[string]any{"slug": "renamed"}, &e); code != 400 {
		t.Fatalf("changing the slug: %d", code)
	}
	// Unlisted rooms are not listed for others; public ones are, live first.
	bob.createRoom("bob-room")
	var list struct {
		Rooms []apiRoom `json:"rooms"`
	}
	anon.must(200, "GET", "/api/v1/rooms", nil, &list)
	if len(list.Rooms) != 1 || list.Rooms[0].Slug != "bob-room" {
		t.Fatalf("public list = %+v", list.Rooms)
	}

	// Publish with the room's key: live within a second of the stream, and HLS plays.
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{})
	index := waitIndex(t, o, pid)
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		var r apiRoom
		anon.must(200, "GET", "/api/v1/rooms/"+pid, nil, &r)
		return r.Live, "room not live yet"
	})
	r := readHLS(t, index)
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		v, a, problems := r.snapshot()
		return v >= 30 && a >= 30, fmt.Sprintf("received %d video, %d audio; %v", v, a, problems)
	})

	// Rotation: the live publish ends and the old key is refused.
	var rotated struct {
		StreamKey string `json:"stream_key"`
	}
	ann.must(200, "POST", "/api/v1/rooms/ann-live/stream-key", nil, &rotated)
	if rotated.StreamKey == key || len(rotated.StreamKey) < 32 {
		t.Fatalf("rotated key %q", rotated.StreamKey)
	}
	select {
	case <-pub.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the publish with the old key survived rotation")
	}
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		var r apiRoom
		anon.must(200, "GET", "/api/v1/rooms/"+pid, nil, &r)
		return !r.Live, "room still live"
	})
	old := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{Duration: 20 * time.Second})
	select {
	case <-old.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the old key still publishes")
	}
	fresh := testenv.Publish(t, o.RTMP+"/"+rotated.StreamKey, testenv.PublishOptions{})
	defer fresh.Kill()
	waitIndex(t, o, pid)
	if o.LogsContain(key) || o.LogsContain(rotated.StreamKey) {
		t.Fatal("a stream key appears in the logs")
	}

	// Deleting the room stops its stream.
	ann.must(204, "DELETE", "/api/v1/rooms/ann-live", nil, nil)
	select {
	case <-fresh.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("deleting the room did not end its stream")
	}
	if code, _ := anon.do("GET", "/api/v1/rooms/"+pid, nil, &e); code != 404 {
		t.Fatalf("deleted room: %d", code)
	}
	_ = room
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// chatConn is a websocket to a room's chat.
type chatConn struct {
	t  *testing.T
	ws *websocket.Conn
}

type frame struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Nonce      string          `json:"nonce"`
	Text       string          `json:"text"`
	Handle     string          `json:"handle"`
	Code       string          `json:"code"`
	Messages   []frame         `json:"messages"`
	Count      int             `json:"count"`
	Raw        json.RawMessage `json:"-"`
	RetryAfter int             `json:"retry_after_ms"`
}

func (c *client) chat(slug string) *chatConn {
	c.t.Helper()
	u := "ws" + strings.TrimPrefix(c.base, "http") + "/api/v1/rooms/" + slug + "/chat"
	h := http.Header{"Origin": {c.base}}
	d := websocket.Dialer{Jar: c.http.Jar, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial(u, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		c.t.Fatalf("chat %s: %v (%d)", slug, err, status)
	}
	c.t.Cleanup(func() { ws.Close() })
	return &chatConn{t: c.t, ws: ws}
}

func (cc *chatConn) send(text, nonce string) {
	cc.t.Helper()
	if err := cc.ws.WriteJSON(map[string]string{"type": "message", "text": text, "nonce": nonce}); err != nil {
		cc.t.Fatal(err)
	}
}

// post sends a message and returns the server's answer to it: an ack or an error.
func (cc *chatConn) post(text string) frame {
	cc.t.Helper()
	cc.send(text, text)
	for {
		f := cc.next("")
		if (f.Type == "ack" || f.Type == "error") && f.Nonce == text {
			return f
		}
	}
}

// next reads frames until one of type typ arrives (any type when typ is ""), within 10 s.
func (cc *chatConn) next(typ string) frame {
	cc.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_ = cc.ws.SetReadDeadline(deadline)
		_, b, err := cc.ws.ReadMessage()
		if err != nil {
			cc.t.Fatalf("waiting for a %q frame: %v", typ, err)
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			cc.t.Fatalf("frame %s: %v", b, err)
		}
		f.Raw = b
		if typ == "" || f.Type == typ {
			return f
		}
	}
}
