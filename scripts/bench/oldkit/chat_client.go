package oldkit

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/websocket"
)

// dialChat connects to a chat websocket, retrying while the server answers 503 (onair's
// chat until its hub runs) or refuses connections, until ctx ends.
func DialChat(ctx context.Context, rawURL, cookie string) (*websocket.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("chat client: %w", err)
	}
	h := http.Header{}
	h.Set("Origin", "http://"+u.Host) // the server's own origin, as its page would send
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}
	for {
		ws, resp, err := d.DialContext(ctx, rawURL, h)
		if err == nil {
			return ws, nil
		}
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		if status != 0 && status != http.StatusServiceUnavailable {
			return nil, fmt.Errorf("chat client: dial %s: HTTP %d: %w", u.Path, status, err)
		}
		if serr := SleepUntil(ctx, time.Now().Add(100*time.Millisecond)); serr != nil {
			return nil, fmt.Errorf("chat client: dial %s: %w (last: %w)", u.Path, serr, err)
		}
	}
}
