package live

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"onair/scripts/bench/oldkit"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// nginxRTMPModule is where Debian's libnginx-mod-rtmp installs the module.
const nginxRTMPModule = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

// nginxServer is nginx with the RTMP module writing classic HLS (MPEG-TS, 1 s fragments,
// 2 min playlist like onair's DVR window), served by nginx's own http module.
type nginxServer struct {
	proc     *oldkit.Process
	dir      string
	rtmpPort int
	httpPort int
}

func nginxKind() oldkit.ServerKind {
	return oldkit.ServerKind{Name: "nginx-rtmp", Start: func(ctx context.Context, dir string, _ []string) (oldkit.MediaServer, error) {
		return startNginx(ctx, dir)
	}}
}

// nginxConfig is the whole configuration; %[1]s is the prefix directory.
const nginxConfig = `%[4]s
daemon off;
master_process on;
worker_processes 1;
load_module %[5]s;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;

events {
    worker_connections 4096;
}

rtmp {
    server {
        listen 127.0.0.1:%[2]d;
        chunk_size 4096;
        application live {
            live on;
            hls on;
            hls_path %[1]s/hls;
            hls_fragment 1s;
            hls_playlist_length 120s;
        }
    }
}

http {
    access_log off;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    server {
        listen 127.0.0.1:%[3]d;
        location / {
            root %[1]s/hls;
            types {
                application/vnd.apple.mpegurl m3u8;
                video/mp2t ts;
            }
            add_header Cache-Control no-cache;
        }
    }
}
`

func startNginx(ctx context.Context, dir string) (*nginxServer, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, fmt.Errorf("nginx is required (scripts/deps.sh bench installs it): %w", err)
	}
	if _, err := os.Stat(nginxRTMPModule); err != nil {
		return nil, fmt.Errorf("the nginx RTMP module is required (libnginx-mod-rtmp): %w", err)
	}
	for _, d := range []string{"hls", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("nginx: %w", err)
		}
	}
	// As root, nginx's workers would switch to an unprivileged user that cannot write
	// the HLS directory; keep them as root (this is a throwaway loopback instance).
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	s := &nginxServer{dir: dir}
	if s.rtmpPort, err = oldkit.FreePort(); err != nil {
		return nil, err
	}
	if s.httpPort, err = oldkit.FreePort(); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	body := fmt.Sprintf(nginxConfig, dir, s.rtmpPort, s.httpPort, user, nginxRTMPModule)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	if s.proc, err = oldkit.StartProcess("nginx", cmd); err != nil {
		return nil, err
	}
	client := oldkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	err = oldkit.WaitReady(ctx, s.proc, 10*time.Second, func() error {
		if err := oldkit.Dialable("127.0.0.1:" + strconv.Itoa(s.rtmpPort)); err != nil {
			return err
		}
		_, err := oldkit.HttpStatus(ctx, client, s.HTTPBase()+"/")
		return err
	})
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, s.errorLog())
	}
	return s, nil
}

func (s *nginxServer) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
	return string(b)
}

func (s *nginxServer) Target(name string) oldkit.RtmpTarget {
	return oldkit.RtmpTarget{Addr: "127.0.0.1:" + strconv.Itoa(s.rtmpPort), App: "live", Name: name}
}

// Probe polls the playlist every 250 ms, about what hls.js does with 1 s segments.
func (s *nginxServer) Probe(client *http.Client, name string) oldkit.HlsProbe {
	return &classicProbe{client: client, url: s.HTTPBase() + "/" + name + ".m3u8", retry: 50 * time.Millisecond, interval: 250 * time.Millisecond}
}

func (s *nginxServer) LoadPaths(ctx context.Context, client *http.Client, name string) ([]string, error) {
	mediaPath := "/" + name + ".m3u8"
	body, _, err := oldkit.HttpGet(ctx, client, s.HTTPBase()+mediaPath)
	if err != nil {
		return nil, fmt.Errorf("nginx load paths: %w", err)
	}
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("nginx load paths: media playlist: %w", err)
	}
	if len(pl.Segments) == 0 {
		return nil, errors.New("nginx load paths: no segment yet")
	}
	return []string{mediaPath, "/" + pl.Segments[len(pl.Segments)-1].URI}, nil
}

func (s *nginxServer) StreamReady(ctx context.Context, client *http.Client, name string) bool {
	code, err := oldkit.HttpStatus(ctx, client, s.HTTPBase()+"/"+name+".m3u8")
	return err == nil && code == http.StatusOK
}

func (s *nginxServer) HTTPBase() string { return "http://127.0.0.1:" + strconv.Itoa(s.httpPort) }

func (s *nginxServer) Pids() []int { return oldkit.ProcessTree(s.proc.Pid()) }

func (s *nginxServer) DataDir() string { return filepath.Join(s.dir, "hls") }

func (s *nginxServer) Alive() error {
	if exited, err := s.proc.Exited(); exited {
		return fmt.Errorf("nginx exited (%v): %s%s", err, s.proc.Output(), s.errorLog())
	}
	return nil
}

func (s *nginxServer) Logs() string { return s.errorLog() }

// Stop asks nginx for a fast shutdown (SIGTERM to master and workers).
func (s *nginxServer) Stop() {
	if s.proc != nil {
		s.proc.Stop(syscall.SIGTERM, 10*time.Second)
	}
	_ = os.RemoveAll(s.dir)
}
