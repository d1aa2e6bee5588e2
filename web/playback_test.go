package web

import (
	"compress/gzip"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"onair/media"
	"onair/rooms"
	"onair/rooms/cluster"
	"onair/scripts/testenv"
)

func TestWithToken(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"multivariant",
			"#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",URI=\"audio2_stream.m3u8?s=r1\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nvideo1_stream.m3u8?s=r1\n",
			"#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",URI=\"audio2_stream.m3u8?s=r1&token=T.1\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nvideo1_stream.m3u8?s=r1&token=T.1\n"},
		{"low-latency media playlist",
			"#EXTM3U\r\n#EXT-X-MAP:URI=\"v_init.mp4\"\r\n#EXT-X-PART:DURATION=0.2,URI=\"v_part1.mp4\"\r\n#EXTINF:1,\r\nv_seg1.mp4\r\n" +
				"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"v_part2.mp4\"\r\n#EXT-X-RENDITION-REPORT:URI=\"a_stream.m3u8\",LAST-MSN=1\r\n",
			"#EXTM3U\r\n#EXT-X-MAP:URI=\"v_init.mp4?token=T.1\"\r\n#EXT-X-PART:DURATION=0.2,URI=\"v_part1.mp4?token=T.1\"\r\n#EXTINF:1,\r\nv_seg1.mp4?token=T.1\r\n" +
				"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"v_part2.mp4?token=T.1\"\r\n#EXT-X-RENDITION-REPORT:URI=\"a_stream.m3u8?token=T.1\",LAST-MSN=1\r\n"},
		{"replay over byte ranges",
			"#EXT-X-MAP:URI=\"/vod/p/b/media.mp4\",BYTERANGE=\"900@0\"\n#EXT-X-BYTERANGE:10@900\n/vod/p/b/media.mp4\n#EXT-X-ENDLIST\n",
			"#EXT-X-MAP:URI=\"/vod/p/b/media.mp4?token=T.1\",BYTERANGE=\"900@0\"\n#EXT-X-BYTERANGE:10@900\n/vod/p/b/media.mp4?token=T.1\n#EXT-X-ENDLIST\n"},
		{"no URIs", "#EXTM3U\n#EXT-X-ENDLIST\n", "#EXTM3U\n#EXT-X-ENDLIST\n"},
		{"odd attributes and no final newline",
			"#X:URI=\"\",A=\"b\",URI=\"c?d\"\n#Y:URI=\"unclosed\n\r\nseg.mp4",
			"#X:URI=\"\",A=\"b\",URI=\"c?d&token=T.1\"\n#Y:URI=\"unclosed\n\r\nseg.mp4?token=T.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(withToken(nil, []byte(tt.in), "T.1")); got != tt.want {
				t.Fatalf("got:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}

// playbackEnv is a rooms service on a MongoDB of the test's own, with ann's private
// room.
type playbackEnv struct {
	svc  *rooms.Service
	ann  rooms.User
	room rooms.Room
	keys *rooms.PlaybackKeys
}

func newPlaybackEnv(t testing.TB) *playbackEnv {
	t.Helper()
	db := testenv.StartMongoDB(t).Database(t, "web")
	nodes, err := cluster.New(cluster.Config{DB: db, NodeID: "web-test"})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := rooms.New(rooms.Config{DB: db, Cluster: nodes, Password: rooms.PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := svc.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	ann, err := svc.SignUp(ctx, rooms.SignUp{Email: "ann@example.com", Handle: "ann", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	pe := &playbackEnv{svc: svc, ann: ann.User}
	pe.room = pe.createRoom(t, "ann-room", rooms.Private)
	if pe.keys, err = svc.Playback(ctx); err != nil {
		t.Fatal(err)
	}
	return pe
}

func (pe *playbackEnv) createRoom(t testing.TB, slug string, v rooms.Visibility) rooms.Room {
	t.Helper()
	room, _, err := pe.svc.CreateRoom(context.Background(), pe.ann, rooms.NewRoom{Slug: slug, Title: slug, Visibility: v})
	if err != nil {
		t.Fatal(err)
	}
	return room
}

// sign is a token of ann's for the room with this playback id, valid for ttl.
func (pe *playbackEnv) sign(t testing.TB, room string, ttl time.Duration) string {
	t.Helper()
	tok, err := pe.keys.Sign(rooms.Grant{Room: room, Viewer: pe.ann.ID, Expires: time.Now().Add(ttl)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// privateHLS is a node's HLS server with one stream: playlists list parts, parts are
// bytes, all cacheable by anyone as the real one says.
type privateHLS struct {
	name   string
	served atomic.Int64
}

func (p *privateHLS) Live(name string) bool { return name == p.name }

func (p *privateHLS) Immutable(file string) bool { return !strings.HasSuffix(file, ".m3u8") }

func (p *privateHLS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("name") != p.name {
		http.NotFound(w, r)
		return
	}
	if r.PathValue("token") != "" || strings.Contains(r.URL.Path, "/t/") || r.URL.Query().Has("token") {
		http.Error(w, "a viewer's token reached the HLS server", http.StatusInternalServerError)
		return
	}
	p.served.Add(1)
	if strings.HasSuffix(r.PathValue("file"), ".m3u8") {
		w.Header().Set("Cache-Control", "public, max-age=1")
		body := "#EXTM3U\n#EXT-X-PART:DURATION=0.2,URI=\"v_part1.mp4\"\n#EXTINF:1,\nv_seg1.mp4\n"
		// As media/hls does: playlists gzipped for clients that accept it.
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = io.WriteString(zw, body)
			_ = zw.Close()
			return
		}
		_, _ = io.WriteString(w, body)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = io.WriteString(w, "part bytes")
}

// A private room's HLS, on the node that has the stream and on a node that fetches it
// from there: every request needs a valid token of the room, also for what the fetching
// node has cached and for blocking playlist requests; the origin refuses a request that
// only claims to come from another node; answers are private; playlists fetched with a
// URL token carry it in every URI.
func TestPrivateHLSOnEveryNode(t *testing.T) {
	pe := newPlaybackEnv(t)
	svc, room := pe.svc, pe.room
	other := pe.createRoom(t, "ann-other", rooms.Private)
	sign := func(room string, ttl time.Duration) string { return pe.sign(t, room, ttl) }
	good, expired, otherRoom := sign(room.PlaybackID, time.Minute), sign(room.PlaybackID, -time.Second), sign(other.PlaybackID, time.Minute)

	originHLS := &privateHLS{name: room.PlaybackID}
	node := func(hls LocalHLS, origins OriginNodes) *Server {
		s, err := New(Config{HLS: hls, Hub: media.NewHub(media.HubConfig{}), Rooms: svc, OriginNodes: origins})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	origin := node(originHLS, fixedOriginNodes{})
	originSrv := httptest.NewServer(origin.Handler())
	t.Cleanup(originSrv.Close)
	edge := node(&privateHLS{}, fixedOriginNodes{name: room.PlaybackID, url: originSrv.URL})

	get := func(s *Server, path string, header http.Header) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	cookie := func(tok string) http.Header { return http.Header{"Cookie": {playbackCookie + "=" + tok}} }
	live := "/live/" + room.PlaybackID + "/"
	tests := []struct {
		name   string
		node   *Server
		path   string
		header http.Header
		want   int
	}{
		{"origin, no token", origin, live + "v_part1.mp4", nil, 403},
		{"origin, cookie", origin, live + "v_part1.mp4", cookie(good), 200},
		{"origin, URL token", origin, live + "v_part1.mp4?token=" + good, nil, 200},
		{"origin, expired", origin, live + "v_part1.mp4?token=" + expired, nil, 403},
		{"origin, another room's token", origin, live + "v_part1.mp4", cookie(otherRoom), 403},
		{"origin, claims to be a node", origin, live + "v_part1.mp4", http.Header{proxiedHeader: {"1"}}, 403},
		{"origin, blocking playlist without token", origin, live + "v_stream.m3u8?_HLS_msn=5&_HLS_part=1", nil, 403},
		{"edge, part with a token (fetched and cached)", edge, live + "v_part1.mp4", cookie(good), 200},
		{"edge, cached part without token", edge, live + "v_part1.mp4", nil, 403},
		{"edge, cached part with an expired token", edge, live + "v_part1.mp4?token=" + expired, nil, 403},
		{"edge, cached part with another room's token", edge, live + "v_part1.mp4", cookie(otherRoom), 403},
		{"edge, cached part with a token", edge, live + "v_part1.mp4?token=" + good, nil, 200},
		{"edge, blocking playlist without token", edge, live + "v_stream.m3u8?_HLS_msn=5&_HLS_part=1", nil, 403},
		{"edge, blocking playlist with a token", edge, live + "v_stream.m3u8?_HLS_msn=5&_HLS_part=1", cookie(good), 200},
		{"by slug, with a token", edge, "/live/ann-room/v_part1.mp4?token=" + good, nil, 404},
		// The URL the token API hands out has the token in its path; the edge's cache and
		// the origin see the path without it.
		{"origin, token in the path", origin, live + "t/" + good + "/v_part1.mp4", nil, 200},
		{"origin, expired token in the path", origin, live + "t/" + expired + "/v_part1.mp4", nil, 403},
		{"edge, cached part with a token in the path", edge, live + "t/" + good + "/v_part1.mp4", nil, 200},
		{"edge, cached part with another room's token in the path", edge, live + "t/" + otherRoom + "/v_part1.mp4", nil, 403},
		{"edge, blocking playlist with a token in the path", edge, live + "t/" + good + "/v_stream.m3u8?_HLS_msn=5&_HLS_part=1", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(tt.node, tt.path, tt.header)
			if rec.Code != tt.want {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tt.want)
			}
			if cc := rec.Header().Get("Cache-Control"); rec.Code == 200 && !strings.HasPrefix(cc, "private") {
				t.Fatalf("Cache-Control %q: a shared cache may keep it", cc)
			}
		})
	}
	if n := originHLS.served.Load(); n != 6 {
		t.Errorf("the origin's HLS served %d requests, want 6 (3 of its own viewers', the part and the 2 playlists the edge fetched)", n)
	}

	// A URL token follows every URI of the playlists, on both nodes, also for a browser
	// that accepts gzip.
	for _, s := range []*Server{origin, edge} {
		rec := get(s, live+"v_stream.m3u8?token="+good, http.Header{"Accept-Encoding": {"gzip, deflate"}})
		body := rec.Body.String()
		if rec.Code != 200 || !strings.Contains(body, `URI="v_part1.mp4?token=`+good+`"`) || !strings.Contains(body, "\nv_seg1.mp4?token="+good+"\n") {
			t.Fatalf("playlist with a URL token: %d\n%s", rec.Code, body)
		}
		if rec := get(s, live+"v_stream.m3u8", cookie(good)); strings.Contains(rec.Body.String(), "token=") {
			t.Fatalf("playlist for a cookie lists a token:\n%s", rec.Body)
		}
		// A token in the path needs no rewriting: the relative URIs resolve under it.
		if rec := get(s, live+"t/"+good+"/v_stream.m3u8", nil); rec.Code != 200 || strings.Contains(rec.Body.String(), "token=") ||
			!strings.Contains(rec.Body.String(), `URI="v_part1.mp4"`) {
			t.Fatalf("playlist for a token in the path: %d\n%s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkPlaybackGate is what a private room's token check adds to a media request
// served by this node, by where the token is, against an unlisted room's request (served
// as a public room's): the HLS server answers the same few bytes to each.
func BenchmarkPlaybackGate(b *testing.B) {
	pe := newPlaybackEnv(b)
	unlisted := pe.createRoom(b, "ann-unlisted", rooms.Unlisted)
	tok := pe.sign(b, pe.room.PlaybackID, time.Hour)
	serve := func(b *testing.B, name, path string, header http.Header) {
		s, err := New(Config{HLS: &privateHLS{name: name}, Hub: media.NewHub(media.HubConfig{}), Rooms: pe.svc, OriginNodes: fixedOriginNodes{}})
		if err != nil {
			b.Fatal(err)
		}
		h := s.Handler()
		req := httptest.NewRequest("GET", "/live/"+name+"/"+path, nil)
		maps.Copy(req.Header, header)
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	}
	private := pe.room.PlaybackID
	b.Run("unlisted", func(b *testing.B) { serve(b, unlisted.PlaybackID, "v_part1.mp4", nil) })
	b.Run("cookie", func(b *testing.B) {
		serve(b, private, "v_part1.mp4", http.Header{"Cookie": {playbackCookie + "=" + tok}})
	})
	b.Run("token in the path", func(b *testing.B) { serve(b, private, "t/"+tok+"/v_part1.mp4", nil) })
	b.Run("token in the query", func(b *testing.B) { serve(b, private, "v_part1.mp4?token="+tok, nil) })
}
