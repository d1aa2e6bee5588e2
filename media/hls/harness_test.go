package hls

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"onair/media"
	"onair/media/fmp4"
)

// Parameter sets of real encoder output: libx264 at 1280x720, and ffmpeg 5.1's libx265
// and libaom at 160x120 (media/flv/testdata).
var (
	h264SPS = mustHex("6764001facd9405005bb0110000003001000000303c0f1831960")
	h264PPS = mustHex("68ebe3cb22c0")
	h265VPS = mustHex("40010c01ffff01600000030090000003000003003c959409")
	h265SPS = mustHex("42010101600000030090000003000003003ca01420207cb965654a4c2f016808000003000800000300f040")
	h265PPS = mustHex("4401c073c189")
	av1Seq  = mustHex("0800000003b4ff736be401")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func aacTrack(channels int) *media.AudioTrack {
	return &media.AudioTrack{Codec: media.CodecAAC, SampleRate: 48000, Channels: channels,
		AAC: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: uint8(channels)}}
}

var h264AAC = media.Tracks{
	Video: &media.VideoTrack{Codec: media.CodecH264, SPS: h264SPS, PPS: h264PPS, Width: 1280, Height: 720},
	Audio: aacTrack(2),
}

// harness is a Server with one run fed by hand and served over real HTTP.
type harness struct {
	t    *testing.T
	srv  *Server
	http *httptest.Server
	hub  *media.Hub
	pub  *media.Publisher
	st   *media.Stream
	sink media.Sink

	// The publisher's clock: the next video frame's and audio frame's timestamps.
	frame  int
	audio  int
	fps    int
	gop    int // frames per key frame interval
	wall0  time.Time
	video  bool
	hasAud bool
	bytes  int // per video frame
	// head starts every video payload: an OBU header for AV1 (a frame without size
	// field), anything for H.264 and H.265, whose NAL units are only length-prefixed.
	head byte
}

// archive is an Archive for tests: it keeps every run, and reads back what a test says
// left the disk from copies it makes of the sealed chunks.
type archive struct {
	mu       sync.Mutex
	chunks   map[int64][]byte // start → bytes
	segs     []fmp4.Segment   // of the sealed chunks, in order: what a recording indexes
	initSize int64
	ended    bool
}

func (a *archive) Keep(_ *media.Stream, l *fmp4.Log) (Kept, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.initSize = l.InitSize()
	return a, nil
}

func (a *archive) Owns(string) bool { return false }

func (a *archive) Sealed(c *fmp4.Chunk) {
	b, err := os.ReadFile(c.Path)
	if err != nil {
		panic(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.chunks == nil {
		a.chunks = map[int64][]byte{}
	}
	a.chunks[c.Start] = b
	a.segs = append(a.segs, c.Segments...)
}

func (a *archive) Ended(last *fmp4.Chunk) {
	if last != nil {
		a.Sealed(last)
	}
	a.mu.Lock()
	a.ended = true
	a.mu.Unlock()
}

func (a *archive) Open(_ context.Context, off, n int64) (io.ReadCloser, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for start, b := range a.chunks {
		if off >= start && off+n <= start+int64(len(b)) {
			return io.NopCloser(bytes.NewReader(b[off-start : off-start+n])), nil
		}
	}
	return nil, os.ErrNotExist
}

type harnessOpts struct {
	tracks  media.Tracks
	gop     int // frames per key frame (default 30: 1 s)
	archive Archive
	cfg     Config
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	if o.tracks.Video == nil && o.tracks.Audio == nil {
		o.tracks = h264AAC
	}
	cfg := o.cfg
	cfg.Dir = filepath.Join(t.TempDir(), "runs")
	cfg.Archive = o.archive
	cfg.PlaylistWait = 3 * time.Second
	if cfg.DVRWindow == 0 {
		cfg.DVRWindow = 20 * time.Second
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, fps: 30, gop: o.gop, wall0: time.Now(), bytes: 2000,
		video: o.tracks.Video != nil, hasAud: o.tracks.Audio != nil}
	if h.gop == 0 {
		h.gop = 30
	}
	if v := o.tracks.Video; v != nil && v.Codec == media.CodecAV1 {
		h.head = 0x30
	}
	h.hub = media.NewHub(media.HubConfig{TakeoverAfter: time.Hour, IdleTimeout: time.Hour})
	h.pub, err = h.hub.Publish(context.Background(), media.Route{Name: "cam"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if h.st, err = h.pub.Start(o.tracks); err != nil {
		t.Fatal(err)
	}
	if h.sink, err = srv.OpenSink(h.st); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/live/{name}/{file}", srv)
	h.http = httptest.NewServer(mux)
	t.Cleanup(h.http.Close)
	return h
}

// feed sends d of media as an encoder does: 30 fps video with a key frame every gop
// frames, AAC frames of 1024 samples at 48 kHz, both with RTMP's millisecond timestamps,
// in decode-time order.
func (h *harness) feed(d time.Duration) {
	h.t.Helper()
	end := h.now() + d
	for {
		vt := time.Duration(h.frame) * time.Second / time.Duration(h.fps)
		at := time.Duration(h.audio) * 1024 * time.Second / 48000
		if !h.video {
			vt = 1 << 62
		}
		if !h.hasAud {
			at = 1 << 62
		}
		next := min(vt, at)
		if next >= end {
			return
		}
		ms := next.Truncate(time.Millisecond)
		au := &media.AccessUnit{DTS: ms, PTS: ms, Received: h.wall0.Add(next)}
		if vt <= at {
			au.Video, au.Key = true, h.frame%h.gop == 0
			au.Payload = [][]byte{append([]byte{h.head}, bytes.Repeat([]byte{byte(h.frame)}, h.bytes-1)...)}
			h.frame++
		} else {
			au.Key, au.Payload = true, [][]byte{bytes.Repeat([]byte{0xaa}, 300)}
			h.audio++
		}
		if err := h.sink.WriteAccessUnit(au); err != nil {
			h.t.Fatal(err)
		}
	}
}

// now is the publisher's media clock: where the next access unit is.
func (h *harness) now() time.Duration {
	vt := time.Duration(h.frame) * time.Second / time.Duration(h.fps)
	at := time.Duration(h.audio) * 1024 * time.Second / 48000
	switch {
	case !h.video:
		return at
	case !h.hasAud:
		return vt
	}
	return min(vt, at)
}

// end ends the run as a publisher leaving does.
func (h *harness) end() { h.sink.Close(nil) }

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (h *harness) get(file string, header ...string) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.http.URL+"/live/cam/"+file, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// must gets file and fails the test unless it answers 200.
func (h *harness) must(file string) []byte {
	h.t.Helper()
	r := h.get(file)
	if r.code != http.StatusOK {
		h.t.Fatalf("GET %s: %d %s", file, r.code, r.body)
	}
	return r.body
}

// uri strips a playlist URI's query.
func uri(u string) string {
	p, _, _ := strings.Cut(u, "?")
	return p
}
