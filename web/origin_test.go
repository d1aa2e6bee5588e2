package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"onair/media"
	"onair/rooms"
)

// fakeHLS is a node's own HLS server with the streams it has; it answers every file.
type fakeHLS struct {
	streams map[string]bool
	proxied chan bool // whether each request it served came from another node
}

func (f *fakeHLS) Live(name string) bool { return f.streams[name] }

// Immutable: the media files this fake knows end in .mp4.
func (f *fakeHLS) Immutable(file string) bool { return strings.HasSuffix(file, ".mp4") }

func (f *fakeHLS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !f.streams[r.PathValue("name")] {
		http.NotFound(w, r)
		return
	}
	select {
	case f.proxied <- r.Header.Get(proxiedHeader) != "":
	default:
	}
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	_, _ = w.Write([]byte("#EXTM3U\n"))
}

// fixedOriginNodes knows one stream's origin.
type fixedOriginNodes struct{ name, url string }

func (o fixedOriginNodes) Origin(_ context.Context, name string) (string, string, error) {
	if name != o.name {
		return "", "", errors.New("not live elsewhere")
	}
	return o.url, "room-" + name, nil
}

func newTestNode(t *testing.T, hls *fakeHLS, origins OriginNodes, trustProxy bool) *Server {
	t.Helper()
	s, err := New(Config{HLS: hls, Hub: media.NewHub(media.HubConfig{}), OriginNodes: origins, TrustProxy: trustProxy})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Viewers are counted on the node they reach: the origin's own viewers there, those who
// watch through another node on that node, and the proxying node never as a viewer of the
// origin.
func TestViewersCountedWhereTheyArrive(t *testing.T) {
	originHLS := &fakeHLS{streams: map[string]bool{"cam": true}, proxied: make(chan bool, 100)}
	origin := newTestNode(t, originHLS, fixedOriginNodes{}, false)
	originSrv := httptest.NewServer(origin.Handler())
	t.Cleanup(originSrv.Close)
	edge := newTestNode(t, &fakeHLS{}, fixedOriginNodes{name: "cam", url: originSrv.URL + "/"}, false)
	trusting := newTestNode(t, &fakeHLS{}, fixedOriginNodes{name: "cam", url: originSrv.URL}, true)

	type viewer struct {
		node           *Server
		stream, file   string
		addr, ua, xff  string
		proxiedRequest bool // sent with the header one node puts on what it fetches from another
	}
	playlist := "video1_stream.m3u8"
	viewers := []viewer{
		{node: origin, stream: "cam", file: playlist, addr: "10.0.0.1:1000", ua: "A"},
		{node: origin, stream: "cam", file: playlist, addr: "10.0.0.1:1001", ua: "A"}, // a new connection of the same client
		{node: origin, stream: "cam", file: "index.m3u8", addr: "10.0.0.9:1000", ua: "A"},
		{node: origin, stream: "nowhere", file: playlist, addr: "10.0.0.1:1000", ua: "A"},
		{node: edge, stream: "cam", file: playlist, addr: "10.0.0.2:1000", ua: "A"},
		{node: edge, stream: "cam", file: playlist, addr: "10.0.0.2:1000", ua: "B"},
		{node: edge, stream: "cam", file: playlist, addr: "10.0.0.3:1000", ua: "A"},
		{node: edge, stream: "nowhere", file: playlist, addr: "10.0.0.3:1000", ua: "A"},
		// A request that claims to come from another node is served locally and not counted.
		{node: edge, stream: "cam", file: playlist, addr: "10.0.0.4:1000", ua: "A", proxiedRequest: true},
		{node: origin, stream: "cam", file: playlist, addr: "10.0.0.4:1000", ua: "A", proxiedRequest: true},
		// Behind a trusted proxy the client is X-Forwarded-For's last hop.
		{node: trusting, stream: "cam", file: playlist, addr: "10.9.9.9:1000", ua: "A", xff: "198.51.100.1, 203.0.113.1"},
		{node: trusting, stream: "cam", file: playlist, addr: "10.9.9.9:1001", ua: "A", xff: "203.0.113.2"},
		{node: trusting, stream: "cam", file: playlist, addr: "10.9.9.9:1002", ua: "A", xff: "198.51.100.2, 203.0.113.2"},
	}
	for _, v := range viewers {
		req := httptest.NewRequest("GET", fmt.Sprintf("/live/%s/%s", v.stream, v.file), nil)
		req.RemoteAddr = v.addr
		req.Header.Set("User-Agent", v.ua)
		if v.xff != "" {
			req.Header.Set("X-Forwarded-For", v.xff)
		}
		if v.proxiedRequest {
			req.Header.Set(proxiedHeader, "1")
		}
		rec := httptest.NewRecorder()
		v.node.Handler().ServeHTTP(rec, req)
		if want := map[bool]int{true: 200, false: 404}[v.stream == "cam" && (v.node == origin || !v.proxiedRequest)]; rec.Code != want {
			t.Fatalf("%+v: %d, want %d", v, rec.Code, want)
		}
	}

	tests := []struct {
		name string
		node *Server
		want map[string]int
	}{
		{"origin: its own viewers only, not the nodes that fetch from it", origin, map[string]int{"cam": 1}},
		{"edge: the viewers it proxies", edge, map[string]int{"cam": 3}},
		{"behind a trusted proxy: forwarded addresses", trusting, map[string]int{"cam": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.node.Viewers(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("Viewers = %v, want %v", got, tt.want)
			}
		})
	}
	close(originHLS.proxied)
	fromNodes := 0
	for p := range originHLS.proxied {
		if p {
			fromNodes++
		}
	}
	if fromNodes < 2 { // the edge's and the trusting node's fetches, coalesced or not
		t.Fatalf("the origin served %d requests from other nodes, want them marked", fromNodes)
	}
}

// switchingOrigins answers with err once it is set, else with the origin.
type switchingOrigins struct {
	url string
	mu  sync.Mutex
	err error
}

func (o *switchingOrigins) Origin(context.Context, string) (string, string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return "", "", o.err
	}
	return o.url, "room-cam", nil
}

func (o *switchingOrigins) fail(err error) {
	o.mu.Lock()
	o.err = err
	o.mu.Unlock()
}

// A node that proxies a stream keeps fetching it from the origin it knows while MongoDB
// does not answer the lookup, instead of telling its viewers that the stream is gone; it
// stops once MongoDB says that no other node has the stream.
func TestProxyKeepsItsOriginWhileMongoDBIsAway(t *testing.T) {
	originSrv := httptest.NewServer(newTestNode(t, &fakeHLS{streams: map[string]bool{"cam": true}}, fixedOriginNodes{}, false).Handler())
	t.Cleanup(originSrv.Close)
	origins := &switchingOrigins{url: originSrv.URL}
	edge := newTestNode(t, &fakeHLS{}, origins, false)
	get := func() int {
		rec := httptest.NewRecorder()
		edge.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/live/cam/video1_stream.m3u8", nil))
		return rec.Code
	}
	expire := func() { // as if originTTL had passed since the last lookup
		edge.proxy.mu.Lock()
		e := edge.proxy.lookup["cam"]
		e.at = e.at.Add(-originTTL)
		edge.proxy.lookup["cam"] = e
		edge.proxy.mu.Unlock()
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("through the edge: %d", code)
	}
	expire()
	origins.fail(fmt.Errorf("find room cam: %w", rooms.ErrUnavailable))
	if code := get(); code != http.StatusOK {
		t.Fatalf("through the edge while MongoDB is away: %d, want 200 from the origin it knew", code)
	}
	expire()
	origins.fail(rooms.ErrNotLiveElsewhere)
	if code := get(); code != http.StatusNotFound {
		t.Fatalf("through the edge once the stream is live nowhere else: %d, want 404", code)
	}
}
