package oldkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"time"
)

// rigAPI is a signed-in client of onair's REST API, as the web app is: a cookie jar, the
// site's Origin on every request and the CSRF token.
type RigAPI struct {
	base string
	Http *http.Client
	csrf string
}

const rigPassword = "correct horse battery bench"

func NewRigAPI(base string) (*RigAPI, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("api client: %w", err)
	}
	return &RigAPI{base: base, Http: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}}}, nil
}

// do sends a JSON request, checks the status and decodes the answer into out (if not nil).
func (c *RigAPI) Do(ctx context.Context, method, path string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Origin", c.base)
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.Http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: HTTP %d %s (want %d)", method, path, resp.StatusCode, bytes.TrimSpace(b), want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// signUp creates the account handle and signs in as it.
func (c *RigAPI) SignUp(ctx context.Context, handle string) error {
	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	err := c.Do(ctx, http.MethodPost, "/api/v1/auth/signup",
		map[string]string{"email": handle + "@example.com", "handle": handle, "password": rigPassword}, &me, http.StatusCreated)
	c.csrf = me.CSRFToken
	return err
}

// at returns a client of the node at base with the same session: sessions live in
// MongoDB, so every node accepts them, and signing in again (an argon2id hash of
// 19 MiB) would disturb the memory figures of the node under test.
func (c *RigAPI) At(base string) *RigAPI {
	return &RigAPI{base: base, Http: c.Http, csrf: c.csrf}
}

// createRoom creates a room and returns its stream key.
func (c *RigAPI) CreateRoom(ctx context.Context, slug string) (string, error) {
	var out struct {
		StreamKey string `json:"stream_key"`
	}
	err := c.Do(ctx, http.MethodPost, "/api/v1/rooms", map[string]any{"slug": slug, "title": "Bench " + slug}, &out, http.StatusCreated)
	if err == nil && out.StreamKey == "" {
		err = fmt.Errorf("create room %s: no stream key in the answer", slug)
	}
	return out.StreamKey, err
}

// setRecording switches a room's recording on or off (from its next broadcast on).
func (c *RigAPI) SetRecording(ctx context.Context, slug string, on bool) error {
	return c.Do(ctx, http.MethodPatch, "/api/v1/rooms/"+slug, map[string]bool{"recording": on}, nil, http.StatusOK)
}

// live reports whether the room is live.
func (c *RigAPI) Live(ctx context.Context, slug string) (bool, error) {
	var room struct {
		Live bool `json:"live"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/v1/rooms/"+slug, nil, &room, http.StatusOK)
	return room.Live, err
}

// rigBroadcast is what the API says of a broadcast.
type RigBroadcast struct {
	ID         string     `json:"id"`
	Started    time.Time  `json:"started"`
	Ended      *time.Time `json:"ended"`
	DurationMS int64      `json:"duration_ms"`
	ReplayURL  string     `json:"replay_url"`
	Recording  *struct {
		Status     string `json:"status"`
		Size       int64  `json:"size"`
		DurationMS int64  `json:"duration_ms"`
		Recovered  bool   `json:"recovered"`
	} `json:"recording"`
}

// broadcasts lists a room's broadcasts, newest first.
func (c *RigAPI) Broadcasts(ctx context.Context, slug string) ([]RigBroadcast, error) {
	var page struct {
		Broadcasts []RigBroadcast `json:"broadcasts"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/v1/rooms/"+slug+"/broadcasts", nil, &page, http.StatusOK)
	return page.Broadcasts, err
}

// status is the HTTP status of GET path (an API or HLS path).
func (c *RigAPI) status(ctx context.Context, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	resp, err := c.Http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitLive waits until the room is live and its HLS playlist answers 200.
func (c *RigAPI) WaitLive(ctx context.Context, slug string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		live, err := c.Live(ctx, slug)
		if err == nil && live {
			var code int
			if code, err = c.status(ctx, "/live/"+slug+"/index.m3u8"); err == nil && code == http.StatusOK {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("HLS playlist: HTTP %d", code)
			}
		} else if err == nil {
			err = fmt.Errorf("room %s is not live", slug)
		}
		if SleepUntil(ctx, time.Now().Add(100*time.Millisecond)) != nil {
			return fmt.Errorf("room %s not live within %s: %w", slug, timeout, err)
		}
	}
}
