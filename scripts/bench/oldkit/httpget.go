package oldkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// requestTimeout bounds one HTTP request of the probe, blocking ones included.
const requestTimeout = 15 * time.Second

// newHTTPClient returns a client for loopback servers: no proxy from the environment,
// enough idle connections for a player's parallel part requests.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}}
}

// statusError is an HTTP answer other than 200.
type statusError struct {
	URL  string
	Code int
}

func (e *statusError) Error() string { return fmt.Sprintf("GET %s: HTTP %d", e.URL, e.Code) }

// httpGet fetches url and returns the body and the time its last byte arrived.
func HttpGet(ctx context.Context, client *http.Client, url string) ([]byte, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	arrived := time.Now()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, &statusError{URL: url, Code: resp.StatusCode}
	}
	return body, arrived, nil
}

// httpGetUntilFound retries url every interval while it answers 404 or 503 (the stream
// is not there yet, or onair's "stream is starting").
func HttpGetUntilFound(ctx context.Context, client *http.Client, url string, interval time.Duration) ([]byte, error) {
	for {
		body, _, err := HttpGet(ctx, client, url)
		var se *statusError
		if err == nil || !errors.As(err, &se) || (se.Code != http.StatusNotFound && se.Code != http.StatusServiceUnavailable) {
			return body, err
		}
		if err := SleepUntil(ctx, time.Now().Add(interval)); err != nil {
			return nil, fmt.Errorf("GET %s: still %d: %w", url, se.Code, err)
		}
	}
}
