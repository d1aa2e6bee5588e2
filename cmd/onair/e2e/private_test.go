package e2e

import (
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"onair/scripts/testenv"
)

// at is the client on another node: the same browser (cookies, CSRF token).
func (c *client) at(base string) *client {
	cc := *c
	cc.base = base
	return &cc
}

// get fetches path (a page, a playlist) with the client's cookies and returns the answer.
func (c *client) get(path string, header ...string) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest("GET", c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// dialChat opens the room's chat socket, or returns the HTTP status that refused it.
func (c *client) dialChat(ref string) (*chatConn, int) {
	c.t.Helper()
	u := "ws" + strings.TrimPrefix(c.base, "http") + "/api/v1/rooms/" + ref + "/chat"
	d := websocket.Dialer{Jar: c.http.Jar, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial(u, http.Header{"Origin": {c.base}})
	if err != nil {
		if resp == nil {
			c.t.Fatalf("chat %s: %v", ref, err)
		}
		return nil, resp.StatusCode
	}
	c.t.Cleanup(func() { ws.Close() })
	return &chatConn{t: c.t, ws: ws}, http.StatusSwitchingProtocols
}

type privateRoom struct {
	apiRoom
	Ref        string    `json:"ref"`
	URL        string    `json:"url"`
	PlaybackID string    `json:"playback_id"`
	Invited    []apiUser `json:"invited"`
}

// The security review's attack, as an anonymous attacker makes it: an unlisted room is
// not found by its slug (API, page, HLS, chat, broadcasts), nor its broadcast by walking
// the ids around the attacker's own broadcast; the playback id's URLs work, and its
// broadcast, found by its id, does not name the room's slug.
func TestUnlistedRoomsAreNotFound(t *testing.T) {
	o, _ := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	mallory := newClient(t, o.HTTP)
	mallory.signUp("mallory")
	anon := newClient(t, o.HTTP)

	var created struct {
		Room      privateRoom `json:"room"`
		StreamKey string      `json:"stream_key"`
	}
	ann.must(201, "POST", "/api/v1/rooms", map[string]any{"slug": "ann-secret", "title": "Ann's secret show", "visibility": "unlisted"}, &created)
	secret := created.Room
	_, malloryKey := mallory.createRoom("mallory-room")
	annPub := testenv.Publish(t, o.RTMP+"/"+created.StreamKey, testenv.PublishOptions{})
	testenv.Publish(t, o.RTMP+"/"+malloryKey, testenv.PublishOptions{})
	for _, c := range []struct {
		who  *client
		slug string
	}{{ann, "ann-secret"}, {mallory, "mallory-room"}} {
		testenv.Eventually(t, 20*time.Second, func() (bool, string) {
			var r apiRoom
			c.who.must(200, "GET", "/api/v1/rooms/"+c.slug, nil, &r)
			return r.Live, c.slug + " not live yet"
		})
	}

	// By slug, the room does not exist for the attacker.
	for _, path := range []string{"/api/v1/rooms/ann-secret", "/api/v1/rooms/ann-secret/broadcasts",
		"/api/v1/rooms/ann-secret/chat/history", "/rooms/ann-secret", "/live/ann-secret/index.m3u8"} {
		if code, _, body := anon.get(path); code != http.StatusNotFound {
			t.Errorf("anonymous GET %s: %d, want 404: %.200s", path, code, body)
		}
	}
	if _, code := anon.dialChat("ann-secret"); code != http.StatusNotFound {
		t.Errorf("anonymous chat by slug: %d, want 404", code)
	}
	// /watch/<slug> answers exactly as for a name that is nothing.
	code, h, body := anon.get("/watch/ann-secret")
	nCode, nh, _ := anon.get("/watch/no-such-room")
	if code != nCode || h.Get("Location") != nh.Get("Location") || strings.Contains(string(body), "Ann&#39;s secret show") {
		t.Errorf("/watch/ann-secret: %d (Location %q) vs %d for nothing", code, h.Get("Location"), nCode)
	}

	// Walking the ids around the attacker's own broadcast finds nothing.
	var mine struct {
		Broadcasts []apiBroadcast `json:"broadcasts"`
	}
	mallory.must(200, "GET", "/api/v1/rooms/mallory-room/broadcasts", nil, &mine)
	if len(mine.Broadcasts) != 1 {
		t.Fatalf("mallory's broadcasts: %+v", mine.Broadcasts)
	}
	own := mine.Broadcasts[0].ID
	found := 0
	for _, id := range neighbours(t, own, 64) {
		code, _, body := anon.get("/api/v1/broadcasts/" + id)
		if code != http.StatusNotFound {
			found++
			t.Errorf("GET /api/v1/broadcasts/%s (near the attacker's %s): %d %s", id, own, code, body)
		}
	}
	t.Logf("%d ids around the attacker's broadcast tried, %d answered", 128, found)

	// The playback id's URLs work for anyone, without naming the slug.
	pid := secret.PlaybackID
	if len(pid) != 26 || secret.URL != "/watch/"+pid || secret.HLSURL != "/live/"+pid+"/index.m3u8" {
		t.Fatalf("unlisted room as its owner sees it: %+v", secret)
	}
	var seen privateRoom
	anon.must(200, "GET", "/api/v1/rooms/"+pid, nil, &seen)
	if seen.Slug != "" || seen.PlaybackID != pid || seen.Title != "Ann's secret show" {
		t.Fatalf("unlisted room by playback id: %+v", seen)
	}
	if code, _, body := anon.get("/watch/" + pid); code != 200 || !strings.Contains(string(body), `data-hls="/live/`+pid+`/index.m3u8"`) {
		t.Fatalf("/watch/<playback id>: %d", code)
	}
	r := readHLS(t, o.HTTP+"/live/"+pid+"/index.m3u8")
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		v, a, problems := r.snapshot()
		return v >= 30 && a >= 30, fmt.Sprintf("%d video, %d audio; %v", v, a, problems)
	})
	r.Stop()
	var theirs struct {
		Broadcasts []apiBroadcast `json:"broadcasts"`
	}
	anon.must(200, "GET", "/api/v1/rooms/"+pid+"/broadcasts", nil, &theirs)
	if len(theirs.Broadcasts) != 1 {
		t.Fatalf("unlisted room's broadcasts: %+v", theirs.Broadcasts)
	}
	var b struct {
		ID       string `json:"id"`
		RoomSlug string `json:"room_slug"`
	}
	anon.must(200, "GET", "/api/v1/broadcasts/"+theirs.Broadcasts[0].ID, nil, &b)
	if b.RoomSlug != "" {
		t.Fatalf("an unlisted room's broadcast names its slug to anyone: %+v", b)
	}
	ann.must(200, "GET", "/api/v1/broadcasts/"+b.ID, nil, &b)
	if b.RoomSlug != "ann-secret" {
		t.Fatalf("the owner does not see the slug: %+v", b)
	}

	// Made public while live, the stream's name (its HLS URL) changes: the publish under
	// the playback id ends, as after a key rotation, for OBS to reconnect under the slug.
	ann.must(200, "PATCH", "/api/v1/rooms/ann-secret", map[string]any{"visibility": "public"}, nil)
	select {
	case <-annPub.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the publish under the playback id survived the change to public")
	}
	if code, _, _ := anon.get("/api/v1/rooms/ann-secret"); code != 200 {
		t.Fatalf("the room made public, by slug: %d", code)
	}
}

// neighbours are the ids an attacker tries around a known one: the ObjectIDs made just
// before and after it (their counter), or, for an opaque id, the values next to it.
func neighbours(t *testing.T, id string, n int) []string {
	t.Helper()
	add := func(b []byte, d int) []byte {
		out := append([]byte{}, b...)
		carry := d
		for i := len(out) - 1; i >= 0 && carry != 0; i-- {
			v := int(out[i]) + carry
			out[i] = byte(v)
			carry = v >> 8
			if v < 0 {
				carry = -1
			}
		}
		return out
	}
	var out []string
	if raw, err := hex.DecodeString(id); err == nil && len(raw) == 12 {
		for d := 1; d <= n; d++ {
			out = append(out, hex.EncodeToString(add(raw, d)), hex.EncodeToString(add(raw, -d)))
		}
		return out
	}
	enc := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	raw, err := enc.DecodeString(id)
	if err != nil {
		t.Fatalf("broadcast id %q is neither an ObjectID nor base32: %v", id, err)
	}
	for d := 1; d <= n; d++ {
		out = append(out, enc.EncodeToString(add(raw, d)), enc.EncodeToString(add(raw, -d)))
	}
	return out
}

// A private room on two nodes, the stream published to the first: anonymous, another
// user, an invited user and a user whose invitation is revoked, against its page, live
// HLS (playlists, blocking requests, parts), chat, the broadcasts API, the replay and the
// download, on the node with the stream and on the node that fetches it from there.
func TestPrivateRoomAcrossNodes(t *testing.T) {
	bin := testenv.OnairBinary(t)
	m, s3 := testenv.StartMongoDB(t), testenv.StartS3(t)
	// Chat re-checks its sockets' users every 2 s, not every 30 s, so that the test need
	// not wait long for the revoked viewer's socket on the other node.
	a := startNode(t, bin, m, s3, "ONAIR_CHAT_ADMIT_INTERVAL=2s")
	b := startNode(t, bin, m, s3, "ONAIR_CHAT_ADMIT_INTERVAL=2s")

	ann := newClient(t, a.HTTP)
	ann.signUp("ann")
	users := map[string]*client{"anonymous": newClient(t, a.HTTP)}
	for _, h := range []string{"bob", "ivy", "rev"} {
		users[h] = newClient(t, a.HTTP)
		users[h].signUp(h)
	}
	var created struct {
		Room      privateRoom `json:"room"`
		StreamKey string      `json:"stream_key"`
	}
	ann.must(201, "POST", "/api/v1/rooms", map[string]any{"slug": "ann-private", "title": "Ann's private show", "visibility": "private"}, &created)
	pid := created.Room.PlaybackID
	for _, h := range []string{"ivy", "@rev"} {
		ann.must(200, "POST", "/api/v1/rooms/ann-private/viewers", map[string]string{"handle": h}, nil)
	}
	var room privateRoom
	ann.must(200, "GET", "/api/v1/rooms/ann-private", nil, &room)
	if len(room.Invited) != 2 || room.URL != "/watch/"+pid || room.Ref != pid {
		t.Fatalf("private room as its owner sees it: %+v", room)
	}
	pub := testenv.Publish(t, a.RTMP+"/"+created.StreamKey, testenv.PublishOptions{})
	ann.must(200, "POST", "/api/v1/rooms/"+pid+"/playback", nil, nil)
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		code, _, _ := ann.get("/live/" + pid + "/index.m3u8")
		return code == 200, fmt.Sprintf("owner's playlist: %d", code)
	})
	// rev watches and chats through node B before the revocation.
	rev := users["rev"].at(b.HTTP)
	rev.must(200, "POST", "/api/v1/rooms/"+pid+"/playback", nil, nil)
	revChat, code := rev.dialChat(pid)
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("rev's chat: %d", code)
	}
	revChat.next("history")

	type want struct{ page, api, media int }
	wants := map[string]want{
		"anonymous": {401, 401, 403},
		"bob":       {403, 403, 403},
		"ivy":       {200, 200, 200},
	}
	for _, node := range []*testenv.Onair{a, b} {
		for who, w := range wants {
			c := users[who].at(node.HTTP)
			t.Run(fmt.Sprintf("%s via %s", who, node.HTTP), func(t *testing.T) {
				c.t = t
				if code, _, _ := c.get("/watch/" + pid); code != w.page {
					t.Errorf("page: %d, want %d", code, w.page)
				}
				for _, path := range []string{"/rooms/ann-private", "/api/v1/rooms/ann-private", "/live/ann-private/index.m3u8"} {
					if code, _, _ := c.get(path); code != 404 {
						t.Errorf("%s by slug: %d, want 404", path, code)
					}
				}
				for _, path := range []string{"/api/v1/rooms/" + pid, "/api/v1/rooms/" + pid + "/broadcasts", "/api/v1/rooms/" + pid + "/chat/history"} {
					if code, _, body := c.get(path); code != w.api {
						t.Errorf("%s: %d, want %d: %.200s", path, code, w.api, body)
					}
				}
				if code, _ := c.do("POST", "/api/v1/rooms/"+pid+"/playback", nil, nil); code != w.api {
					t.Errorf("playback cookie: %d, want %d", code, w.api)
				}
				if cc, code := c.dialChat(pid); code != map[bool]int{true: 101, false: w.api}[w.api == 200] {
					t.Errorf("chat: %d", code)
				} else if cc != nil {
					cc.next("history")
				}
				checkPrivateHLS(t, c, ann.at(node.HTTP), pid, w.media)
			})
		}
	}

	// The invited viewer plays through the node without the stream, on her cookie.
	ivyB := users["ivy"].at(b.HTTP)
	r := readHLS(t, b.HTTP+"/live/"+pid+"/index.m3u8", withHTTPClient(&http.Client{Jar: ivyB.http.Jar, Timeout: 20 * time.Second}))
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		v, au, problems := r.snapshot()
		return v >= 30 && au >= 30, fmt.Sprintf("ivy via B: %d video, %d audio; %v", v, au, problems)
	})
	r.Stop()

	// An external player with the owner's URL token, through node B, without cookies.
	var tok struct {
		Token   string    `json:"token"`
		Expires time.Time `json:"expires"`
		HLSURL  string    `json:"hls_url"`
	}
	if code, _ := users["bob"].do("POST", "/api/v1/rooms/"+pid+"/playback-tokens", map[string]any{"ttl_seconds": 600}, nil); code != 403 {
		t.Fatalf("bob asks for a URL token: %d", code)
	}
	if code, _ := ann.do("POST", "/api/v1/rooms/"+pid+"/playback-tokens", map[string]any{"ttl_seconds": 30}, nil); code != 400 {
		t.Fatalf("a URL token for 30 s: %d, want 400", code)
	}
	ann.must(201, "POST", "/api/v1/rooms/"+pid+"/playback-tokens", map[string]any{"ttl_seconds": 600}, &tok)
	player := newClient(t, b.HTTP)
	// The token is in the URL's path: the playlists' relative URIs carry it on as they are.
	code, _, mv := player.get(tok.HLSURL)
	if code != 200 || !strings.Contains(tok.HLSURL, "/t/"+tok.Token+"/") || strings.Contains(string(mv), "token=") {
		t.Fatalf("multivariant playlist at the URL token's %s: %d\n%s", tok.HLSURL, code, mv)
	}
	r = readHLS(t, b.HTTP+tok.HLSURL)
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		v, au, problems := r.snapshot()
		return v >= 30 && au >= 30, fmt.Sprintf("URL token via B: %d video, %d audio; %v", v, au, problems)
	})
	r.Stop()

	// Revoked through node A: no new cookie on either node, no page, and rev's socket on
	// node B is closed by B's next admission pass.
	ann.must(200, "DELETE", "/api/v1/rooms/ann-private/viewers/rev", nil, nil)
	for _, node := range []*testenv.Onair{a, b} {
		c := users["rev"].at(node.HTTP)
		if code, _ := c.do("POST", "/api/v1/rooms/"+pid+"/playback", nil, nil); code != 403 {
			t.Errorf("revoked viewer's new cookie via %s: %d, want 403", node.HTTP, code)
		}
		if code, _, _ := c.get("/watch/" + pid); code != 403 {
			t.Errorf("revoked viewer's page via %s: %d, want 403", node.HTTP, code)
		}
	}
	revoked := time.Now()
	_ = revChat.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, _, err := revChat.ws.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, 4403) {
			t.Fatalf("revoked viewer's chat socket on node B: %v, want close 4403", err)
		}
		break
	}
	t.Logf("revoked viewer's chat socket on the other node closed %s after the revocation", time.Since(revoked).Round(100*time.Millisecond))

	// The broadcast and its replay.
	if err := pub.Stop(); err != nil {
		t.Logf("ffmpeg: %v", err)
	}
	bc := waitReplay(t, ann, "ann-private", 60*time.Second)
	if !strings.HasPrefix(bc.ReplayURL, "/vod/"+pid+"/"+bc.ID+"/") || !strings.HasPrefix(bc.DownloadURL, "/vod/"+pid+"/") {
		t.Fatalf("private replay URLs %q %q", bc.ReplayURL, bc.DownloadURL)
	}
	for _, node := range []*testenv.Onair{a, b} {
		for who, w := range wants {
			c := users[who].at(node.HTTP)
			if code, _ := c.do("POST", "/api/v1/rooms/"+pid+"/playback", nil, nil); code != w.api {
				t.Errorf("%s via %s: playback cookie %d, want %d", who, node.HTTP, code, w.api)
			}
			var got struct {
				RoomSlug string `json:"room_slug"`
			}
			if code, _ := c.do("GET", "/api/v1/broadcasts/"+bc.ID, nil, &got); code != w.api || got.RoomSlug != "" {
				t.Errorf("%s via %s: broadcast %d %+v, want %d without the slug", who, node.HTTP, code, got, w.api)
			}
			code, _, playlist := c.get(bc.ReplayURL)
			if code != w.media {
				t.Errorf("%s via %s: replay playlist %d, want %d", who, node.HTTP, code, w.media)
			}
			if code, _, _ := c.get(bc.DownloadURL); code != map[bool]int{true: 302, false: w.media}[w.media == 200] {
				t.Errorf("%s via %s: download %d", who, node.HTTP, code)
			}
			if w.media == 200 {
				m := uriLine.FindSubmatch(playlist)
				if m == nil {
					t.Fatalf("replay playlist without URIs:\n%s", playlist)
				}
				code, h, _ := c.get(string(m[1]), "Range", "bytes=0-99")
				loc, _ := url.Parse(h.Get("Location"))
				if code != 302 || loc == nil || loc.Host == "" {
					t.Fatalf("%s: replay fragment %d, Location %q", who, code, h.Get("Location"))
				}
				// The presigned URL lasts no longer than the page's token (5 min).
				if exp, _ := strconv.Atoi(loc.Query().Get("X-Amz-Expires")); exp <= 0 || exp > 300 {
					t.Errorf("presigned for %d s, longer than the token", exp)
				}
			}
		}
	}
	// A replay with a URL token, read to its end through node B: every fragment's request
	// carries the token and is sent on to the object store.
	if n := replayFrames(t, b.HTTP+"/api/v1/broadcasts/"+bc.ID+"/replay.m3u8?token="+url.QueryEscape(tok.Token)); n < 30 {
		t.Fatalf("replay with a URL token: %d frames", n)
	}
	if code, _, _ := newClient(t, b.HTTP).get("/api/v1/broadcasts/" + bc.ID + "/replay.m3u8"); code != 403 {
		t.Fatalf("replay without a token: %d", code)
	}
	for _, node := range []*testenv.Onair{a, b} {
		if node.LogsContain(tok.Token) {
			t.Fatal("a playback token was logged")
		}
	}
}

var regexpPart = regexp.MustCompile(`#EXT-X-PART:[^\n]*URI="([^"]+)"`)

// checkPrivateHLS requests the room's playlists, a blocking playlist request and a part
// as c (with the cookies it has) and wants code for each; the owner's view of the same
// node gives the URIs.
func checkPrivateHLS(t *testing.T, c, owner *client, pid string, code int) {
	t.Helper()
	base := "/live/" + pid + "/"
	got, _, _ := c.get(base + "index.m3u8")
	if got != code {
		t.Errorf("multivariant playlist: %d, want %d", got, code)
	}
	_, _, mv := owner.get(base + "index.m3u8")
	m := uriLine.FindSubmatch(mv)
	if m == nil {
		t.Fatalf("no media playlist in:\n%s", mv)
	}
	mediaPath := base + string(m[1])
	_, _, media := owner.get(mediaPath)
	parts := regexpPart.FindAllSubmatch(media, -1)
	if len(parts) == 0 {
		t.Fatalf("no part in:\n%s", media)
	}
	for _, path := range []string{mediaPath, nextBlockingRequest(mediaPath, media), base + string(parts[len(parts)-1][1])} {
		if got, _, body := c.get(path); got != code {
			t.Errorf("%s: %d, want %d: %.100s", path, got, code, body)
		}
	}
}
