package oldkit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// mediaServer is a running server under test: onair or nginx-rtmp.
type MediaServer interface {
	// Target is where a publisher of stream name sends.
	Target(name string) RtmpTarget
	// Probe returns a player for stream name.
	Probe(client *http.Client, name string) HlsProbe
	// LoadPaths returns the HTTP paths that many viewers of stream name request: its
	// media playlist and its newest complete segment.
	LoadPaths(ctx context.Context, client *http.Client, name string) ([]string, error)
	// StreamReady reports whether stream name is served over HLS.
	StreamReady(ctx context.Context, client *http.Client, name string) bool
	// HTTPBase is the server's HTTP origin, e.g. http://127.0.0.1:8080.
	HTTPBase() string
	// Pids are the processes whose CPU and memory count as the server's.
	Pids() []int
	// DataDir holds the server's HLS files on disk.
	DataDir() string
	// Alive returns an error once the server has exited.
	Alive() error
	// Logs is the tail of what the server logged.
	Logs() string
	// Stop ends the server and removes its files.
	Stop()
}

// serverKind starts fresh instances of one server.
type ServerKind struct {
	Name  string // as reported: "onair" or "nginx-rtmp"
	Start func(ctx context.Context, dir string, streams []string) (MediaServer, error)
}

// rtmpURL is the URL ffmpeg publishes to.
func RtmpURL(t RtmpTarget) string { return "rtmp://" + t.Addr + "/" + t.App + "/" + t.Name }

// freePort asks the kernel for a free loopback port; another process could take it
// before the server binds it, which the server's start then reports.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls ready every 50 ms until it returns nil, the process exits or timeout
// passes.
func WaitReady(ctx context.Context, p *Process, timeout time.Duration, ready func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if exited, perr := p.Exited(); exited {
			return fmt.Errorf("%s exited at start (%v): %s", p.name, perr, p.Output())
		}
		if SleepUntil(ctx, time.Now().Add(50*time.Millisecond)) != nil {
			return fmt.Errorf("%s not ready within %s: %w\n%s", p.name, timeout, err, p.Output())
		}
	}
}

// dialable checks that addr accepts TCP connections.
func Dialable(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// httpStatus returns the status of GET url, or an error.
func HttpStatus(ctx context.Context, client *http.Client, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitHTTP200 waits until url answers 200, the process exits or timeout passes.
func WaitHTTP200(ctx context.Context, p *Process, url string, timeout time.Duration) error {
	client := NewHTTPClient()
	defer client.CloseIdleConnections()
	return WaitReady(ctx, p, timeout, func() error {
		code, err := HttpStatus(ctx, client, url)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("GET %s: HTTP %d", url, code)
		}
		return err
	})
}
