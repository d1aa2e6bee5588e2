package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/sirupsen/logrus"
	gortmp "github.com/yutopp/go-rtmp"
	rtmpmsg "github.com/yutopp/go-rtmp/message"

	"onair/media"
	"onair/media/flv"
	"onair/scripts/bench/benchkit"
)

// server is a running server under test: onair or nginx-rtmp.
type server struct {
	name    string
	proc    *benchkit.Process
	dir     string // removed by Stop
	rtmp    string // rtmp://host:port/app
	http    string // http://host:port
	dataDir string // its HLS files
	// key is the publishing name of stream name; playlist its first playlist.
	key, playlist func(name string) string
	// player plays stream name from the moment publishing starts.
	player func(c *http.Client, name string) player
	// loadPaths are the media playlist and the newest complete segment of stream name.
	loadPaths func(ctx context.Context, c *http.Client, name string) ([]string, error)
	pids      func() []int
}

type player interface {
	Run(ctx context.Context, rec *benchkit.FetchLog) error
	Describe() string
}

// kind starts fresh instances of one server, publishing streams.
type kind struct {
	Name  string
	Start func(ctx context.Context, dir string, streams []string) (*server, error)
}

func (s *server) publishURL(name string) string { return s.rtmp + "/" + s.key(name) }

func (s *server) ready(ctx context.Context, c *http.Client, name string) bool {
	code, err := benchkit.HTTPStatus(ctx, c, s.http+s.playlist(name))
	return err == nil && code == http.StatusOK
}

func (s *server) Stop() {
	s.proc.Stop(syscall.SIGTERM, 10*time.Second)
	_ = os.RemoveAll(s.dir)
}

// onairKind is the onair binary with its shipped defaults (LL-HLS, 1 s segments, 200 ms
// parts, 2 min DVR window on disk) and static stream keys.
func onairKind(binary string) kind {
	key := func(name string) string { return "bench-key-" + name + "-0123456789abcdef" }
	return kind{"onair", func(ctx context.Context, dir string, streams []string) (*server, error) {
		var list []string
		for _, name := range streams {
			list = append(list, fmt.Sprintf("{key: %q, name: %q}", key(name), name))
		}
		n, err := benchkit.StartNode(ctx, benchkit.NodeOptions{Binary: binary, Env: []string{"ONAIR_DATA_DIR=" + filepath.Join(dir, "data"),
			"ONAIR_LOG_LEVEL=warn", "ONAIR_STREAMS=[" + strings.Join(list, ", ") + "]"}})
		if err != nil {
			return nil, err
		}
		s := &server{name: "onair", proc: n.Proc, dir: dir, rtmp: strings.TrimSuffix(n.RTMP, "/"), http: n.HTTP, dataDir: filepath.Join(dir, "data"), key: key,
			playlist: func(name string) string { return "/live/" + name + "/index.m3u8" }, pids: func() []int { return []int{n.Pid()} }}
		s.player = func(c *http.Client, name string) player {
			return &benchkit.Player{Client: c, URL: s.http + s.playlist(name), Retry: 50 * time.Millisecond, Scan: benchkit.ScanFMP4}
		}
		s.loadPaths = func(ctx context.Context, c *http.Client, name string) ([]string, error) {
			return OnairLoadPaths(ctx, c, s.http, name)
		}
		return s, nil
	}}
}

// OnairLoadPaths returns the video media playlist of stream ref (as a player first loads
// it, without blocking parameters) and its newest complete video segment.
func OnairLoadPaths(ctx context.Context, c *http.Client, base, ref string) ([]string, error) {
	dir := "/live/" + ref + "/"
	body, _, err := benchkit.HTTPGet(ctx, c, base+dir+"index.m3u8")
	var mv playlist.Multivariant
	if err == nil {
		err = mv.Unmarshal(body)
	}
	if err != nil || len(mv.Variants) == 0 {
		return nil, fmt.Errorf("onair load paths: multivariant playlist: %v", err)
	}
	media := dir + mv.Variants[0].URI
	if body, _, err = benchkit.HTTPGet(ctx, c, base+media); err != nil {
		return nil, err
	}
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("onair load paths: media playlist: %w", err)
	}
	for i := len(pl.Segments) - 1; i >= 0; i-- {
		if !pl.Segments[i].Gap {
			return []string{media, dir + pl.Segments[i].URI}, nil
		}
	}
	return nil, errors.New("onair load paths: no complete segment yet")
}

// nginxModule is where Debian's libnginx-mod-rtmp installs the RTMP module.
const nginxModule = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

// nginxConfig writes classic HLS (MPEG-TS, 1 s fragments, a 2 min playlist like onair's
// DVR window) served by nginx's own http module; %[1]s is the prefix directory. As root,
// nginx's workers would switch to a user that cannot write the HLS directory: they stay
// root (%[4]s) in this throwaway loopback instance.
const nginxConfig = `%[4]s
daemon off;
master_process on;
worker_processes 1;
load_module %[5]s;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 4096; }
rtmp {
    server {
        listen 127.0.0.1:%[2]d;
        chunk_size 4096;
        application live { live on; hls on; hls_path %[1]s/hls; hls_fragment 1s; hls_playlist_length 120s; }
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
            types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
            add_header Cache-Control no-cache;
        }
    }
}
`

// nginxKind is nginx with the RTMP module.
func nginxKind() kind {
	return kind{"nginx-rtmp", func(ctx context.Context, dir string, _ []string) (*server, error) {
		if _, err := os.Stat(nginxModule); err != nil {
			return nil, fmt.Errorf("nginx with its RTMP module is required (scripts/deps.sh bench): %w", err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
			return nil, err
		}
		user := map[bool]string{true: "user root;"}[os.Geteuid() == 0]
		rtmpPort, httpPort := benchkit.FreePort(), benchkit.FreePort()
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConfig, dir, rtmpPort, httpPort, user, nginxModule), 0o644); err != nil {
			return nil, err
		}
		p, err := benchkit.StartProcess("nginx", exec.Command("nginx", "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")))
		if err != nil {
			return nil, err
		}
		s := &server{name: "nginx-rtmp", proc: p, dir: dir, rtmp: fmt.Sprintf("rtmp://127.0.0.1:%d/live", rtmpPort), http: fmt.Sprintf("http://127.0.0.1:%d", httpPort),
			dataDir: filepath.Join(dir, "hls"), key: func(name string) string { return name }, playlist: func(name string) string { return "/" + name + ".m3u8" },
			pids: func() []int { return benchkit.ProcessTree(p.Pid()) }}
		s.player = func(c *http.Client, name string) player {
			return &classicPlayer{client: c, url: s.http + s.playlist(name), interval: 250 * time.Millisecond}
		}
		s.loadPaths = func(ctx context.Context, c *http.Client, name string) ([]string, error) {
			body, _, err := benchkit.HTTPGet(ctx, c, s.http+s.playlist(name))
			var pl playlist.Media
			if err == nil {
				err = pl.Unmarshal(body)
			}
			if err != nil || len(pl.Segments) == 0 {
				return nil, fmt.Errorf("nginx load paths: no segment yet (%v)", err)
			}
			return []string{s.playlist(name), "/" + pl.Segments[len(pl.Segments)-1].URI}, nil
		}
		if err := benchkit.WaitReady(ctx, p, 10*time.Second, func() error { _, err := benchkit.HTTPStatus(ctx, http.DefaultClient, s.http+"/"); return err }); err != nil {
			s.Stop()
			return nil, err
		}
		return s, nil
	}}
}

// classicPlayer plays classic HLS (MPEG-TS segments), about as hls.js does with 1 s
// segments: it polls the media playlist every interval, starts at the newest segment and
// fetches each new segment as soon as a poll lists it.
type classicPlayer struct {
	client   *http.Client
	url      string
	interval time.Duration
}

func (p *classicPlayer) Describe() string {
	return fmt.Sprintf("classic HLS (MPEG-TS): playlist polled every %s, each new segment fetched when listed", p.interval)
}

func (p *classicPlayer) Run(ctx context.Context, rec *benchkit.FetchLog) error {
	body, err := benchkit.HTTPGetUntilFound(ctx, p.client, p.url, 50*time.Millisecond)
	next := -1 // media sequence number of the next segment to fetch
	for err == nil {
		polled := time.Now()
		var pl playlist.Media
		if err := pl.Unmarshal(body); err != nil {
			return fmt.Errorf("hls player: media playlist %s: %w", p.url, err)
		}
		if next < 0 && len(pl.Segments) > 0 {
			next = pl.MediaSequence + len(pl.Segments) - 1 // join at the live edge
		}
		for i, seg := range pl.Segments {
			if msn := pl.MediaSequence + i; msn >= next {
				rec.Get(ctx, p.client, benchkit.Resolve(p.url, seg.URI), scanTS)
				next = msn + 1
			}
		}
		if benchkit.SleepUntil(ctx, polled.Add(p.interval)) != nil {
			return nil
		}
		body, _, err = benchkit.HTTPGet(ctx, p.client, p.url)
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("hls player: %w", err)
}

// scanTS returns the H.264 access units of an MPEG-TS segment.
func scanTS(body []byte) ([]benchkit.Frame, error) {
	r := &mpegts.Reader{R: bytes.NewReader(body)}
	if err := r.Initialize(); err != nil {
		return nil, fmt.Errorf("mpegts: %w", err)
	}
	var out []benchkit.Frame
	for _, track := range r.Tracks() {
		if _, ok := track.Codec.(*tscodecs.H264); ok {
			r.OnDataH264(track, func(_, _ int64, au [][]byte) error {
				out = append(out, benchkit.InspectAU(au))
				return nil
			})
		}
	}
	for {
		if err := r.Read(); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("mpegts: %w", err)
		}
	}
}

// publisher sends FLV tags over RTMP in real time, by their timestamps, and puts a
// send-time stamp (benchkit.StampNAL) before the first slice of every H.264 access unit
// right before sending it.
type publisher struct {
	url      string // rtmp://host:port/app/key
	tags     []benchkit.Tag
	duration time.Duration // of media time to send
	mu       sync.Mutex
	stamps   []int64 // send times of the stamped access units
}

// Run publishes until duration is reached, the tags run out or ctx ends.
func (p *publisher) Run(ctx context.Context) error {
	u, err := url.Parse(p.url)
	if err != nil {
		return err
	}
	app, key, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	stream, closeConn, err := dial(ctx, u.Host, app, key)
	if err != nil {
		return fmt.Errorf("publish %s: %w", u.Host, err)
	}
	defer closeConn()
	base, first := time.Now(), p.tags[0].Timestamp
	for _, tag := range p.tags {
		at := time.Duration(tag.Timestamp-first) * time.Millisecond
		if at > p.duration || benchkit.SleepUntil(ctx, base.Add(at)) != nil {
			return nil
		}
		var msg rtmpmsg.Message
		csid := 4 // metadata and audio on 4, video on 6: each chunk stream's timestamps only go forward
		switch tag.Type {
		case benchkit.TagScript:
			msg = &rtmpmsg.DataMessage{Name: "@setDataFrame", Encoding: rtmpmsg.EncodingTypeAMF0, Body: bytes.NewReader(tag.Data)}
		case benchkit.TagAudio:
			msg = &rtmpmsg.AudioMessage{Payload: bytes.NewReader(tag.Data)}
		case benchkit.TagVideo:
			csid = 6
			msg = &rtmpmsg.VideoMessage{Payload: bytes.NewReader(p.stamp(tag.Data))}
		default:
			continue
		}
		if err := stream.Write(csid, tag.Timestamp, msg); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("publish %s: write tag at %d ms: %w", u.Host, tag.Timestamp, err)
		}
	}
	return nil
}

// stamp returns an H.264 frame tag's body with a stamp NAL unit before its first slice;
// other tags come back as they are.
func (p *publisher) stamp(body []byte) []byte {
	t, err := flv.ParseVideoTag(body)
	var au h264.AVCC
	if err != nil || t.Kind != flv.PacketFrame || t.Codec != media.CodecH264 || au.Unmarshal(t.Data) != nil {
		return body
	}
	for i, nalu := range au {
		if typ := h264.NALUType(nalu[0] & 0x1f); typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR {
			now := time.Now().UnixNano()
			out, err := h264.AVCC(append(au[:i:i], append([][]byte{benchkit.StampNAL(now)}, au[i:]...)...)).Marshal()
			if err != nil {
				return body
			}
			p.mu.Lock()
			p.stamps = append(p.stamps, now)
			p.mu.Unlock()
			return append(body[:len(body)-len(t.Data):len(body)-len(t.Data)], out...)
		}
	}
	return body
}

// Stamps returns the send times stamped so far.
func (p *publisher) Stamps() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int64(nil), p.stamps...)
}

// dial connects and starts publishing. go-rtmp's client calls have no deadline of their
// own, so they run in a goroutine that is abandoned (with its connection closed) when
// 10 s or ctx end first.
func dial(ctx context.Context, addr, app, key string) (*gortmp.Stream, func(), error) {
	type result struct {
		conn   *gortmp.ClientConn
		stream *gortmp.Stream
		err    error
	}
	done := make(chan result, 1)
	go func() {
		logger := logrus.New()
		logger.SetOutput(io.Discard)
		conn, err := gortmp.Dial("rtmp", addr, &gortmp.ConnConfig{Logger: logger})
		var stream *gortmp.Stream
		if err == nil {
			err = conn.Connect(&rtmpmsg.NetConnectionConnect{Command: rtmpmsg.NetConnectionConnectCommand{
				App: app, Type: "nonprivate", FlashVer: "FMLE/3.0 (compatible; onair-bench)", TCURL: "rtmp://" + addr + "/" + app}})
			if err == nil {
				stream, err = conn.CreateStream(nil, 4096)
			}
			if err == nil {
				err = stream.Publish(&rtmpmsg.NetStreamPublish{PublishingName: key, PublishingType: "live"})
			}
			if err != nil {
				_ = conn.Close()
			}
		}
		done <- result{conn, stream, err}
	}()
	closeLate := func() {
		if r := <-done; r.err == nil {
			_ = r.conn.Close()
		}
	}
	select {
	case r := <-done:
		return r.stream, func() { _ = r.conn.Close() }, r.err
	case <-ctx.Done():
		go closeLate()
		return nil, nil, ctx.Err()
	case <-time.After(10 * time.Second):
		go closeLate()
		return nil, nil, errors.New("no answer within 10 s")
	}
}
