package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// onairServer is the onair binary with its shipped defaults (LL-HLS, 1 s segments, 200 ms
// parts, 2 min DVR window on disk), on free loopback ports.
type onairServer struct {
	proc     *process
	dir      string
	rtmpAddr string // host:port
	app      string
	http     string // http://host:port
}

func onairKind(binary string) serverKind {
	return serverKind{Name: "onair", Start: func(ctx context.Context, dir string, streams []string) (mediaServer, error) {
		return startOnair(ctx, binary, dir, streams)
	}}
}

// onairKey is the stream key of stream name (keys must be at least 16 characters).
func onairKey(name string) string { return "bench-key-" + name + "-0123456789abcdef" }

func startOnair(ctx context.Context, binary, dir string, streams []string) (*onairServer, error) {
	var list []string
	for _, name := range streams {
		list = append(list, fmt.Sprintf("{key: %q, name: %q}", onairKey(name), name))
	}
	proc, banner, err := launchOnair(ctx, "onair", binary,
		"ONAIR_DATA_DIR="+filepath.Join(dir, "data"),
		"ONAIR_LOG_LEVEL=warn",
		"ONAIR_STREAMS=["+strings.Join(list, ", ")+"]",
	)
	if err != nil {
		return nil, err
	}
	s := &onairServer{proc: proc, dir: dir, http: banner.HTTP}
	u, err := url.Parse(banner.RTMP)
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("onair: banner RTMP URL %q: %w", banner.RTMP, err)
	}
	s.rtmpAddr, s.app = u.Host, strings.Trim(u.Path, "/")
	if err := waitHTTP200(ctx, proc, s.http+"/healthz", 10*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// onairBanner is what onair prints at start: where to publish and where to watch.
type onairBanner struct {
	RTMP    string // rtmp://host:port/app
	HTTP    string // http://host:port
	Metrics string // http://host:port of the metrics listener, "" with metrics off
}

// launchOnair starts binary with this process's environment, HTTP, RTMP and metrics on
// free loopback ports, and env (later entries win), and waits for its banner. Every
// publisher of a run dials from 127.0.0.1, so the per-address connection limit, meant for
// the internet, is lifted to the global one.
func launchOnair(ctx context.Context, name, binary string, env ...string) (*process, onairBanner, error) {
	return launchOnairCmd(ctx, name, exec.Command(binary), env...)
}

// launchOnairCmd is launchOnair for a command with arguments of its own.
func launchOnairCmd(ctx context.Context, name string, cmd *exec.Cmd, env ...string) (*process, onairBanner, error) {
	cmd.Env = append(append(os.Environ(), "ONAIR_HTTP_ADDR=127.0.0.1:0", "ONAIR_RTMP_ADDR=127.0.0.1:0",
		"ONAIR_METRICS_ADDR=127.0.0.1:0", "ONAIR_RTMP_MAX_CONNECTIONS_PER_ADDRESS=1000"), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, onairBanner{}, fmt.Errorf("%s: %w", name, err)
	}
	proc, err := startProcess(name, cmd)
	if err != nil {
		return nil, onairBanner{}, err
	}
	banner := make(chan onairBanner, 1)
	go readBanner(stdout, banner)
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case b := <-banner:
		return proc, b, nil
	case <-proc.Done():
		return nil, onairBanner{}, fmt.Errorf("%s exited at start: %s", name, proc.Output())
	case <-timer.C:
		proc.Stop(syscall.SIGTERM, 10*time.Second)
		return nil, onairBanner{}, fmt.Errorf("%s printed no banner within 20 s: %s", name, proc.Output())
	case <-ctx.Done():
		proc.Stop(syscall.SIGTERM, 10*time.Second)
		return nil, onairBanner{}, fmt.Errorf("%s: %w", name, ctx.Err())
	}
}

// readBanner finds the RTMP URL, the HTTP origin and the metrics listener in what onair
// prints at start (cmd/onair/main.go: printBanner), then drains stdout.
func readBanner(r io.Reader, out chan<- onairBanner) {
	re := regexp.MustCompile(`(?m)^OBS server: (\S+)\n(?:OBS server over TLS: \S+\n)?(?:stream key: \S+\n)?` +
		`watch: (https?://[^/\s]+)\S*\n(?:plain http: .*\n)?metrics: (\S+)\n`)
	var seen strings.Builder
	sent := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if sent {
			continue
		}
		seen.WriteString(sc.Text() + "\n")
		if m := re.FindStringSubmatch(seen.String()); m != nil {
			b := onairBanner{RTMP: m[1], HTTP: m[2]}
			if m[3] != "off" {
				b.Metrics = strings.TrimSuffix(m[3], "/metrics")
			}
			out <- b
			sent = true
		}
	}
}

func (s *onairServer) Target(name string) rtmpTarget {
	return rtmpTarget{Addr: s.rtmpAddr, App: s.app, Name: onairKey(name)}
}

func (s *onairServer) Probe(client *http.Client, name string) hlsProbe {
	return &llhlsProbe{client: client, url: s.http + "/live/" + name + "/index.m3u8", retry: 50 * time.Millisecond}
}

// LoadPaths returns the video media playlist (as a player first loads it, without
// blocking parameters) and the newest complete video segment.
func (s *onairServer) LoadPaths(ctx context.Context, client *http.Client, name string) ([]string, error) {
	base := s.http + "/live/" + name + "/"
	body, _, err := httpGet(ctx, client, base+"index.m3u8")
	if err != nil {
		return nil, fmt.Errorf("onair load paths: %w", err)
	}
	var mv playlist.Multivariant
	if err := mv.Unmarshal(body); err != nil || len(mv.Variants) == 0 {
		return nil, fmt.Errorf("onair load paths: multivariant playlist: %v", err)
	}
	mediaPath := "/live/" + name + "/" + mv.Variants[0].URI
	body, _, err = httpGet(ctx, client, s.http+mediaPath)
	if err != nil {
		return nil, fmt.Errorf("onair load paths: %w", err)
	}
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("onair load paths: media playlist: %w", err)
	}
	for i := len(pl.Segments) - 1; i >= 0; i-- {
		if !pl.Segments[i].Gap {
			return []string{mediaPath, "/live/" + name + "/" + pl.Segments[i].URI}, nil
		}
	}
	return nil, errors.New("onair load paths: no complete segment yet")
}

func (s *onairServer) StreamReady(ctx context.Context, client *http.Client, name string) bool {
	code, err := httpStatus(ctx, client, s.http+"/live/"+name+"/index.m3u8")
	return err == nil && code == http.StatusOK
}

func (s *onairServer) HTTPBase() string { return s.http }
func (s *onairServer) Pids() []int      { return []int{s.proc.Pid()} }
func (s *onairServer) DataDir() string  { return filepath.Join(s.dir, "data") }

func (s *onairServer) Alive() error {
	if exited, err := s.proc.Exited(); exited {
		return fmt.Errorf("onair exited (%v): %s", err, s.proc.Output())
	}
	return nil
}

func (s *onairServer) Logs() string { return s.proc.Output() }

func (s *onairServer) Stop() {
	s.proc.Stop(syscall.SIGTERM, 10*time.Second)
	_ = os.RemoveAll(s.dir)
}
