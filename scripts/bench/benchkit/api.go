package benchkit

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// API is a signed-in client of onair's REST API, as the web app is: a cookie jar, the
// site's Origin on every request and the CSRF token.
type API struct {
	base string
	HTTP *http.Client
	csrf string
}

// NewAPI returns a client of the node at base.
func NewAPI(base string) *API {
	jar, _ := cookiejar.New(nil)
	return &API{base: base, HTTP: &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
}

// At returns a client of the node at base with the same session: sessions live in
// MongoDB, so every node accepts them, and signing in again (an argon2id hash of
// 19 MiB) would disturb the memory figures of the node under test.
func (c *API) At(base string) *API { return &API{base: base, HTTP: c.HTTP, csrf: c.csrf} }

// APIError is an answer with another status than the one wanted.
type APIError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %.300s", e.Method, e.Path, e.Code, e.Body)
}

// Do sends a JSON request, checks the status and decodes the answer into out (if not nil).
func (c *API) Do(ctx context.Context, method, path string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", c.base)
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return &APIError{Method: method, Path: path, Code: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// SignUp creates the account handle and signs in as it, retrying for 30 s while onair
// answers 503 (MongoDB not ready yet).
func (c *API) SignUp(ctx context.Context, handle string) error {
	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	body := map[string]string{"email": handle + "@bench.example.com", "handle": handle, "password": "correct horse battery " + handle}
	err := Poll(ctx, 30*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
		err := c.Do(ctx, http.MethodPost, "/api/v1/auth/signup", body, &me, http.StatusCreated)
		if apiErr := (*APIError)(nil); errors.As(err, &apiErr) && apiErr.Code == http.StatusServiceUnavailable {
			return err
		}
		return &Stop{err}
	})
	c.csrf = me.CSRFToken
	return err
}

// Account signs up the account "bench" at base and creates the rooms slugs; it returns
// its client and the rooms' stream keys.
func Account(ctx context.Context, base string, slugs ...string) (*API, map[string]string, error) {
	api, keys := NewAPI(base), map[string]string{}
	err := api.SignUp(ctx, "bench")
	for _, slug := range slugs {
		if err != nil {
			break
		}
		keys[slug], err = api.CreateRoom(ctx, slug)
	}
	return api, keys, err
}

// PublishLive starts a looping publisher of input to room slug on n (stream key key) and
// waits until the room is live.
func (c *API) PublishLive(ctx context.Context, input string, n *Node, slug, key string) (*Process, error) {
	pub, err := StartFFmpeg(input, n.PublishURL(key))
	if err == nil {
		if err = c.WaitLive(ctx, slug, 30*time.Second); err != nil {
			pub.Stop(syscall.SIGTERM, 3*time.Second)
		}
	}
	return pub, err
}

// Cookie is the Cookie header a browser of this session sends to path.
func (c *API) Cookie(path string) string {
	u, _ := url.Parse(c.base + path)
	var out []string
	for _, k := range c.HTTP.Jar.Cookies(u) {
		out = append(out, k.Name+"="+k.Value)
	}
	return strings.Join(out, "; ")
}

// CreateRoom creates a room and returns its stream key.
func (c *API) CreateRoom(ctx context.Context, slug string) (string, error) {
	var out struct {
		StreamKey string `json:"stream_key"`
	}
	err := c.Do(ctx, http.MethodPost, "/api/v1/rooms", map[string]any{"slug": slug, "title": "Bench " + slug}, &out, http.StatusCreated)
	if err == nil && out.StreamKey == "" {
		err = fmt.Errorf("create room %s: no stream key in the answer", slug)
	}
	return out.StreamKey, err
}

// SetRecording switches a room's recording on or off (from its next broadcast on).
func (c *API) SetRecording(ctx context.Context, slug string, on bool) error {
	return c.Do(ctx, http.MethodPatch, "/api/v1/rooms/"+slug, map[string]bool{"recording": on}, nil, http.StatusOK)
}

// Live reports whether the room is live.
func (c *API) Live(ctx context.Context, slug string) (bool, error) {
	var room struct {
		Live bool `json:"live"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/v1/rooms/"+slug, nil, &room, http.StatusOK)
	return room.Live, err
}

// Broadcast is what the API says of a broadcast.
type Broadcast struct {
	ID        string     `json:"id"`
	Started   time.Time  `json:"started"`
	Ended     *time.Time `json:"ended"`
	ReplayURL string     `json:"replay_url"`
	Recording *struct {
		Status     string `json:"status"`
		DurationMS int64  `json:"duration_ms"`
		Recovered  bool   `json:"recovered"`
	} `json:"recording"`
}

// Broadcasts lists a room's broadcasts, newest first.
func (c *API) Broadcasts(ctx context.Context, slug string) ([]Broadcast, error) {
	var page struct {
		Broadcasts []Broadcast `json:"broadcasts"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/v1/rooms/"+slug+"/broadcasts", nil, &page, http.StatusOK)
	return page.Broadcasts, err
}

// Status is the HTTP status of GET path (an API or HLS path).
func (c *API) Status(ctx context.Context, path string) (int, error) {
	return HTTPStatus(ctx, c.HTTP, c.base+path)
}

// ReplayReady reports whether b has a replay whose playlist answers 200.
func (c *API) ReplayReady(ctx context.Context, b Broadcast) (bool, error) {
	if b.ReplayURL == "" {
		return false, nil
	}
	code, err := c.Status(ctx, b.ReplayURL)
	return err == nil && code == http.StatusOK, err
}

// WaitLive waits until the room is live and its HLS playlist answers 200.
func (c *API) WaitLive(ctx context.Context, slug string, timeout time.Duration) error {
	err := Poll(ctx, timeout, 100*time.Millisecond, func(ctx context.Context) error {
		if live, err := c.Live(ctx, slug); err != nil || !live {
			return cmp.Or(err, errors.New("not live"))
		}
		if code, err := c.Status(ctx, "/live/"+slug+"/index.m3u8"); err != nil || code != http.StatusOK {
			return fmt.Errorf("HLS playlist: HTTP %d (%v)", code, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("room %s not live within %s: %w", slug, timeout, err)
	}
	return nil
}
