package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"onair/scripts/bench/oldkit"
	"strings"
	"time"
)

// chatAccount is a signed-up onair user: its session cookie and CSRF token, as a browser
// would hold them after POST /api/v1/auth/signup (cmd/onair/e2e/api_test.go).
type chatAccount struct {
	Handle string
	Cookie string // "name=value" of the session cookie
	CSRF   string
}

// chatAPI calls onair's REST API as a same-origin page would.
type chatAPI struct {
	base   string // http://host:port
	client *http.Client
}

func newChatAPI(base string) *chatAPI {
	c := oldkit.NewHTTPClient()
	c.Timeout = 20 * time.Second
	return &chatAPI{base: base, client: c}
}

// do sends a JSON request with the site's Origin (and the account's session, when given)
// and decodes a JSON answer into out. It returns the response for its cookies.
func (a *chatAPI) do(ctx context.Context, acct *chatAccount, method, path string, body, out any, want int) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("api %s %s: %w", method, path, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("api %s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", a.base)
	if acct != nil {
		req.Header.Set("Cookie", acct.Cookie)
		req.Header.Set("X-CSRF-Token", acct.CSRF)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("api %s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return resp, &chatAPIError{Method: method, Path: path, Code: resp.StatusCode, Body: strings.TrimSpace(string(raw))}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("api %s %s: decode: %w", method, path, err)
		}
	}
	return resp, nil
}

type chatAPIError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *chatAPIError) Error() string {
	return fmt.Sprintf("api %s %s: HTTP %d: %.300s", e.Method, e.Path, e.Code, e.Body)
}

// signUp creates an account and returns its session. It retries while onair answers 503
// (MongoDB not ready yet), for up to 30 s.
func (a *chatAPI) signUp(ctx context.Context, handle string) (*chatAccount, error) {
	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	body := map[string]string{"email": handle + "@bench.example.com", "handle": handle, "password": "bench password " + handle}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := a.do(ctx, nil, http.MethodPost, "/api/v1/auth/signup", body, &me, http.StatusCreated)
		if err == nil {
			for _, c := range resp.Cookies() {
				if c.Value != "" {
					return &chatAccount{Handle: handle, Cookie: c.Name + "=" + c.Value, CSRF: me.CSRFToken}, nil
				}
			}
			return nil, fmt.Errorf("api: sign-up of %s set no session cookie", handle)
		}
		var apiErr *chatAPIError
		if !errors.As(err, &apiErr) || apiErr.Code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return nil, err
		}
		if err := oldkit.SleepUntil(ctx, time.Now().Add(200*time.Millisecond)); err != nil {
			return nil, err
		}
	}
}

// createRoom creates a room owned by acct.
func (a *chatAPI) createRoom(ctx context.Context, acct *chatAccount, slug string) error {
	_, err := a.do(ctx, acct, http.MethodPost, "/api/v1/rooms", map[string]string{"slug": slug, "title": "Chat benchmark"}, nil, http.StatusCreated)
	return err
}
