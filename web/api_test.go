package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"onair/chat"
	"onair/rooms"
	"onair/rooms/audit"
	"onair/rooms/webhook"
	"onair/storage"
)

func TestDecode(t *testing.T) {
	type in struct {
		Title string `json:"title"`
		Count int    `json:"count"`
	}
	tests := []struct {
		name, contentType, body string
		code                    int
		field                   string
	}{
		{"ok", "application/json", `{"title":"x","count":2}`, 0, ""},
		{"charset", "application/json; charset=utf-8", `{"title":"x"}`, 0, ""},
		{"unknown field", "application/json", `{"title":"x","admin":true}`, 400, "admin"},
		{"wrong type", "application/json", `{"count":"two"}`, 400, "count"},
		{"trailing data", "application/json", `{"title":"x"}{"title":"y"}`, 400, ""},
		{"malformed", "application/json", `{"title":`, 400, ""},
		{"form", "application/x-www-form-urlencoded", `title=x`, 415, ""},
		{"too large", "application/json", `{"title":"` + strings.Repeat("a", maxBody) + `"}`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.contentType)
			var v in
			ok := decode(rec, req, &v)
			if ok != (tt.code == 0) || (tt.code != 0 && rec.Code != tt.code) {
				t.Fatalf("decode = %v, code %d %s; want code %d", ok, rec.Code, rec.Body, tt.code)
			}
			if tt.field != "" && !strings.Contains(rec.Body.String(), `"field":"`+tt.field+`"`) {
				t.Fatalf("error does not name field %s: %s", tt.field, rec.Body)
			}
		})
	}
}

func TestSameOriginAndCSRF(t *testing.T) {
	s := &Server{cfg: Config{AllowedPageOrigins: []string{"https://embed.example"}}}
	sess := &rooms.Session{CSRFToken: "tok"}
	tests := []struct {
		name    string
		method  string
		origin  string
		referer string
		token   string
		session bool
		code    int
	}{
		{"read needs nothing", "GET", "", "", "", true, 200},
		{"anonymous same origin", "POST", "http://onair.test", "", "", false, 200},
		{"allowed other origin", "POST", "https://embed.example", "", "tok", true, 200},
		{"referer instead of origin", "POST", "", "http://onair.test/dashboard", "tok", true, 200},
		{"cross site", "POST", "https://evil.example", "", "tok", true, 403},
		{"no origin at all", "DELETE", "", "", "tok", true, 403},
		{"signed in without token", "POST", "http://onair.test", "", "", true, 403},
		{"signed in wrong token", "PATCH", "http://onair.test", "", "nope", true, 403},
		{"signed in with token", "PATCH", "http://onair.test", "", "tok", true, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://onair.test/api/v1/rooms", nil)
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.referer != "" {
				req.Header.Set("Referer", tt.referer)
			}
			if tt.token != "" {
				req.Header.Set(csrfHeader, tt.token)
			}
			if tt.session {
				req = req.WithContext(withSessionForTest(req, sess))
			}
			rec := httptest.NewRecorder()
			s.guardUnsafe(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})).ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("code %d %s, want %d", rec.Code, rec.Body, tt.code)
			}
		})
	}
}

func TestVODPlaylist(t *testing.T) {
	rec := &rooms.Recording{InitSize: 900, Segments: []rooms.RecordingSegment{
		{Size: 1000, Duration: time.Second, Key: true},
		{Size: 1500, Duration: 1500 * time.Millisecond, Key: true},
	}}
	// Recordings made before the segment index read the same from their fragment index.
	old := &rooms.Recording{InitSize: 900, Fragments: []rooms.RecordingFragment{
		{Offset: 900, Size: 1000, Duration: time.Second, Key: true},
		{Offset: 1900, Size: 1500, Start: time.Second, Duration: 1500 * time.Millisecond, Key: true},
	}}
	start := time.Date(2026, 12, 7, 13, 0, 0, 250e6, time.FixedZone("CET", 3600))
	got := vodPlaylist("https://s3.example/b/k.mp4?X-Amz-Signature=abc&x=1", rec, start)
	if again := vodPlaylist("https://s3.example/b/k.mp4?X-Amz-Signature=abc&x=1", old, start); again != got {
		t.Fatalf("a recording indexed by fragments:\n%s\nby segments:\n%s", again, got)
	}
	want := `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="https://s3.example/b/k.mp4?X-Amz-Signature=abc&x=1",BYTERANGE="900@0"
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T12:00:00.250Z
#EXTINF:1.00000,
#EXT-X-BYTERANGE:1000@900
https://s3.example/b/k.mp4?X-Amz-Signature=abc&x=1
#EXTINF:1.50000,
#EXT-X-BYTERANGE:1500@1900
https://s3.example/b/k.mp4?X-Amz-Signature=abc&x=1
#EXT-X-ENDLIST
`
	if got != want {
		t.Fatalf("playlist:\n%s\nwant:\n%s", got, want)
	}
	// A fragment cut inside a GOP means segments are not independent.
	rec.Segments[1].Key = false
	if strings.Contains(vodPlaylist("u", rec, time.Time{}), "INDEPENDENT") {
		t.Fatal("playlist claims independent segments with a non-key fragment")
	}
	if d := presignTTL(10 * time.Hour); d != 21*time.Hour {
		t.Fatalf("presign TTL for 10 h = %s", d)
	}
	if d := presignTTL(200 * time.Hour); d != storage.MaxPresignTTL {
		t.Fatalf("presign TTL is capped at %s, got %s", storage.MaxPresignTTL, d)
	}
}

func TestByteLRU(t *testing.T) {
	c := newByteLRU(10)
	put := func(k string, n int) { c.put(k, &fetched{body: make([]byte, n)}) }
	put("a", 4)
	put("b", 4)
	if _, ok := c.get("a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	put("c", 4) // evicts b, the least recent
	if _, ok := c.get("b"); ok {
		t.Fatal("b was not evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.get(k); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
	put("huge", 11) // larger than the cache: never stored
	if _, ok := c.get("huge"); ok || c.size != 8 {
		t.Fatalf("size %d after an oversize put", c.size)
	}
}

func withSessionForTest(r *http.Request, sess *rooms.Session) context.Context {
	return context.WithValue(r.Context(), sessionKey, sess)
}

// Every domain package's errors get their answer from the one table, with the field and
// the message of typed errors, whatever context was wrapped around them.
func TestFail(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	wrap := func(err error) error { return fmt.Errorf("doing something: %w", err) }
	tests := []struct {
		name       string
		err        error
		code       int
		apiCode    string
		field, msg string
		retryAfter string
	}{
		{"rooms field", wrap(&rooms.ValidationError{Field: "slug", Message: "too short"}), 400, "invalid", "slug", "slug: too short", ""},
		{"audit field", wrap(&audit.ValidationError{Field: "cursor", Message: "bad"}), 400, "invalid", "cursor", "cursor: bad", ""},
		{"webhook field", wrap(&webhook.ValidationError{Field: "url", Message: "not public"}), 400, "invalid", "url", "url: not public", ""},
		{"chat invalid", fmt.Errorf("%w: timeout of 20d", chat.ErrInvalid), 400, "invalid", "", "chat: invalid argument: timeout of 20d", ""},
		{"conflict", wrap(&rooms.ConflictError{Field: "email", Message: "taken"}), 409, "conflict", "email", "email: taken", ""},
		{"rate limited", wrap(&rooms.RateLimitError{Scope: "ip", RetryAfter: 2 * time.Second}), 429, "rate_limited", "", "too many failed logins for this ip; retry in 2s", "3"},
		{"rooms unavailable", wrap(rooms.ErrUnavailable), 503, "unavailable", "", "the database is unreachable; try again shortly", "5"},
		{"chat unavailable", wrap(chat.ErrUnavailable), 503, "unavailable", "", "the database is unreachable; try again shortly", "5"},
		{"webhook unavailable", wrap(webhook.ErrUnavailable), 503, "unavailable", "", "the database is unreachable; try again shortly", "5"},
		{"audit unavailable", wrap(audit.ErrUnavailable), 503, "unavailable", "", "the database is unreachable; try again shortly", "5"},
		{"unauthorized", wrap(rooms.ErrInvalidCredentials), 401, "unauthorized", "", "sign in first", ""},
		{"chat forbidden says why", fmt.Errorf("%w: the owner set this ban", chat.ErrForbidden), 403, "forbidden", "", "the owner set this ban", ""},
		{"rooms forbidden", wrap(rooms.ErrForbidden), 403, "forbidden", "", "you may not do that", ""},
		{"webhook not found", wrap(webhook.ErrNotFound), 404, "not_found", "", "no such webhook in this room", ""},
		{"room not found", wrap(rooms.ErrNotFound), 404, "not_found", "", "not found", ""},
		{"chat not found", wrap(chat.ErrNotFound), 404, "not_found", "", "not found", ""},
		{"anything else", errors.New("disk on fire"), 500, "internal", "", "something went wrong on our side", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.fail(rec, httptest.NewRequest("GET", "/api/v1/x", nil), tt.err)
			var body apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
			}
			e := body.Error
			if rec.Code != tt.code || e.Code != tt.apiCode || e.Field != tt.field || e.Message != tt.msg ||
				rec.Header().Get("Retry-After") != tt.retryAfter {
				t.Fatalf("%d %+v (Retry-After %q), want %d %s %q %q (%q)", rec.Code, e, rec.Header().Get("Retry-After"),
					tt.code, tt.apiCode, tt.field, tt.msg, tt.retryAfter)
			}
		})
	}
	// A client that left gets nothing, not even an error logged.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	s.fail(rec, httptest.NewRequest("GET", "/api/v1/x", nil).WithContext(ctx), errors.New("context canceled"))
	if rec.Body.Len() != 0 {
		t.Fatalf("answered a client that left: %d %s", rec.Code, rec.Body)
	}
}
