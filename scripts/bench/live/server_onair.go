package live

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"onair/scripts/bench/oldkit"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// onairServer is the onair binary with its shipped defaults (LL-HLS, 1 s segments, 200 ms
// parts, 2 min DVR window on disk), on free loopback ports.
type OnairServer struct {
	proc     *oldkit.Process
	dir      string
	rtmpAddr string // host:port
	app      string
	Http     string // http://host:port
}

func onairKind(binary string) oldkit.ServerKind {
	return oldkit.ServerKind{Name: "onair", Start: func(ctx context.Context, dir string, streams []string) (oldkit.MediaServer, error) {
		return startOnair(ctx, binary, dir, streams)
	}}
}

// onairKey is the stream key of stream name (keys must be at least 16 characters).
func onairKey(name string) string { return "bench-key-" + name + "-0123456789abcdef" }

func startOnair(ctx context.Context, binary, dir string, streams []string) (*OnairServer, error) {
	var list []string
	for _, name := range streams {
		list = append(list, fmt.Sprintf("{key: %q, name: %q}", onairKey(name), name))
	}
	proc, banner, err := oldkit.LaunchOnair(ctx, "onair", binary,
		"ONAIR_DATA_DIR="+filepath.Join(dir, "data"),
		"ONAIR_LOG_LEVEL=warn",
		"ONAIR_STREAMS=["+strings.Join(list, ", ")+"]",
	)
	if err != nil {
		return nil, err
	}
	s := &OnairServer{proc: proc, dir: dir, Http: banner.HTTP}
	u, err := url.Parse(banner.RTMP)
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("onair: banner RTMP URL %q: %w", banner.RTMP, err)
	}
	s.rtmpAddr, s.app = u.Host, strings.Trim(u.Path, "/")
	if err := oldkit.WaitHTTP200(ctx, proc, s.Http+"/healthz", 10*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *OnairServer) Target(name string) oldkit.RtmpTarget {
	return oldkit.RtmpTarget{Addr: s.rtmpAddr, App: s.app, Name: onairKey(name)}
}

func (s *OnairServer) Probe(client *http.Client, name string) oldkit.HlsProbe {
	return &oldkit.LlhlsProbe{Client: client, Url: s.Http + "/live/" + name + "/index.m3u8", Retry: 50 * time.Millisecond}
}

// LoadPaths returns the video media playlist (as a player first loads it, without
// blocking parameters) and the newest complete video segment.
func (s *OnairServer) LoadPaths(ctx context.Context, client *http.Client, name string) ([]string, error) {
	base := s.Http + "/live/" + name + "/"
	body, _, err := oldkit.HttpGet(ctx, client, base+"index.m3u8")
	if err != nil {
		return nil, fmt.Errorf("onair load paths: %w", err)
	}
	var mv playlist.Multivariant
	if err := mv.Unmarshal(body); err != nil || len(mv.Variants) == 0 {
		return nil, fmt.Errorf("onair load paths: multivariant playlist: %v", err)
	}
	mediaPath := "/live/" + name + "/" + mv.Variants[0].URI
	body, _, err = oldkit.HttpGet(ctx, client, s.Http+mediaPath)
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

func (s *OnairServer) StreamReady(ctx context.Context, client *http.Client, name string) bool {
	code, err := oldkit.HttpStatus(ctx, client, s.Http+"/live/"+name+"/index.m3u8")
	return err == nil && code == http.StatusOK
}

func (s *OnairServer) HTTPBase() string { return s.Http }

func (s *OnairServer) Pids() []int { return []int{s.proc.Pid()} }

func (s *OnairServer) DataDir() string { return filepath.Join(s.dir, "data") }

func (s *OnairServer) Alive() error {
	if exited, err := s.proc.Exited(); exited {
		return fmt.Errorf("onair exited (%v): %s", err, s.proc.Output())
	}
	return nil
}

func (s *OnairServer) Logs() string { return s.proc.Output() }

func (s *OnairServer) Stop() {
	s.proc.Stop(syscall.SIGTERM, 10*time.Second)
	_ = os.RemoveAll(s.dir)
}
