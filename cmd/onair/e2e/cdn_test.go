package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"onair/scripts/testenv"
)

// originCounter sits between nginx and onair and counts the requests that reach the origin,
// by their whole URI (path and query), which is what nginx keys its cache on.
type originCounter struct {
	proxy    *httputil.ReverseProxy
	inFlight atomic.Int64

	mu     sync.Mutex
	counts map[string]int
}

// newOriginCounter serves the counter on a free port and returns its host:port.
func newOriginCounter(t *testing.T, origin string) (*originCounter, string) {
	t.Helper()
	u, err := url.Parse(origin)
	if err != nil {
		t.Fatal(err)
	}
	c := &originCounter{proxy: httputil.NewSingleHostReverseProxy(u), counts: map[string]int{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, strings.TrimPrefix(srv.URL, "http://")
}

func (c *originCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	c.mu.Lock()
	c.counts[r.URL.RequestURI()]++
	c.mu.Unlock()
	c.proxy.ServeHTTP(w, r)
}

func (c *originCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// llhlsPlayer makes gohlslib's client reload LL-HLS media playlists as hls.js and Apple's
// players do: a blocking request for the part its last playlist hinted (_HLS_msn and
// _HLS_part, the rest of the query as the client sent it, in a stable order). gohlslib's
// client fetches the hinted part and then reloads without them, and a cache would answer
// that reload with the playlist it holds, which still hints the part the player just got.
// It also counts the player's requests and the answers nginx served from its cache.
type llhlsPlayer struct {
	next http.RoundTripper

	mu   sync.Mutex
	hint map[string][2]int // media playlist path → MSN and part index of its preload hint

	requests, hits atomic.Int64
}

func (p *llhlsPlayer) RoundTrip(req *http.Request) (*http.Response, error) {
	media := strings.HasSuffix(req.URL.Path, "_stream.m3u8")
	if media {
		p.mu.Lock()
		h, ok := p.hint[req.URL.Path]
		p.mu.Unlock()
		if ok {
			req = req.Clone(req.Context())
			q := req.URL.Query()
			q.Set("_HLS_msn", strconv.Itoa(h[0]))
			q.Set("_HLS_part", strconv.Itoa(h[1]))
			req.URL.RawQuery = q.Encode()
		}
	}
	resp, err := p.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	p.requests.Add(1)
	if st := resp.Header.Get("X-Cache-Status"); st == "HIT" || st == "UPDATING" {
		p.hits.Add(1)
	}
	if !media || resp.StatusCode != http.StatusOK {
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.URL, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var pl playlist.Media
	if err := pl.Unmarshal(body); err == nil && pl.PreloadHint != nil {
		msn := pl.MediaSequence + len(pl.Segments)
		if pl.Skip != nil {
			msn += pl.Skip.SkippedSegments
		}
		p.mu.Lock()
		p.hint[req.URL.Path] = [2]int{msn, len(pl.Parts)}
		p.mu.Unlock()
	}
	return resp, nil
}

// viewersOf starts n LL-HLS players of index.
func viewersOf(t *testing.T, index string, n int) ([]*received, []*llhlsPlayer) {
	t.Helper()
	var rs []*received
	var ps []*llhlsPlayer
	for range n {
		p := &llhlsPlayer{next: &http.Transport{MaxIdleConnsPerHost: 8}, hint: map[string][2]int{}}
		rs = append(rs, readHLS(t, index, withHTTPClient(&http.Client{Transport: p})))
		ps = append(ps, p)
	}
	return rs, ps
}

var (
	hlsPartRE    = regexp.MustCompile(`_part\d+\.mp4$`)
	hlsSegmentRE = regexp.MustCompile(`_seg\d+\.mp4$`)
)

// originKind tells what an origin request was for.
func originKind(uri string) string {
	p, q, _ := strings.Cut(uri, "?")
	file := path.Base(p)
	switch {
	case hlsPartRE.MatchString(file):
		return "part"
	case hlsSegmentRE.MatchString(file):
		return "segment"
	case strings.HasSuffix(file, "_init.mp4"):
		return "init"
	case strings.HasSuffix(file, ".m3u8") && strings.Contains(q, "_HLS_msn="):
		return "blocking playlist"
	case strings.HasSuffix(file, ".m3u8"):
		return "playlist"
	}
	return "other"
}

// checkOrigin fails the test when nginx fetched an immutable file twice, or a blocking
// playlist more than twice, and returns the origin requests by kind.
func checkOrigin(t *testing.T, name string, counts map[string]int) map[string]int {
	t.Helper()
	byKind := map[string]int{}
	var uris []string
	for uri := range counts {
		uris = append(uris, uri)
	}
	sort.Strings(uris)
	for _, uri := range uris {
		n := counts[uri]
		kind := originKind(uri)
		byKind[kind] += n
		switch kind {
		case "part", "segment", "init":
			if n > 1 {
				t.Errorf("%s: the origin served %s %d times through nginx, want once", name, uri, n)
			}
		case "blocking playlist":
			// Twice at most: nginx may pass one more request on when the first has
			// waited longer than proxy_cache_lock_age.
			if n > 2 {
				t.Errorf("%s: the origin served blocking playlist %s %d times through nginx, want at most 2", name, uri, n)
			}
		}
	}
	return byKind
}

// TestCDN runs LL-HLS viewers through configs/cdn/nginx.conf: one viewer through one nginx
// and eight through another, side by side on the same stream. Each nginx fetches every
// part, segment, init file and blocking playlist from onair at most once, however many
// viewers ask, so the origin's requests do not grow with the viewers.
func TestCDN(t *testing.T) {
	key := newKey(t)
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: []string{streamsEnv(map[string]string{"cam": key})}})
	testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{})
	waitPlaylist(t, o.HTTP+"/live/cam/index.m3u8", 15*time.Second)

	const crowdSize = 8
	soloOrigin, soloAddr := newOriginCounter(t, o.HTTP)
	crowdOrigin, crowdAddr := newOriginCounter(t, o.HTTP)
	soloCDN := testenv.StartCDN(t, soloAddr)
	crowdCDN := testenv.StartCDN(t, crowdAddr)

	soloViewers, soloPlayers := viewersOf(t, soloCDN.URL+"/live/cam/index.m3u8", 1)
	crowdViewers, crowdPlayers := viewersOf(t, crowdCDN.URL+"/live/cam/index.m3u8", crowdSize)
	all := append(append([]*received(nil), soloViewers...), crowdViewers...)
	// Five seconds of video each: 25 parts of 200 ms per rendition, every one of them
	// wanted by all eight viewers of the crowd.
	testenv.Eventually(t, 90*time.Second, func() (bool, string) {
		for i, r := range all {
			v, a, problems := r.snapshot()
			if len(problems) > 0 {
				t.Fatalf("viewer %d through nginx: %v", i, problems)
			}
			if v < 150 || a < 150 {
				return false, fmt.Sprintf("viewer %d received %d video and %d audio units", i, v, a)
			}
		}
		return true, ""
	})
	for _, r := range all {
		r.Stop()
	}
	// What nginx still has in flight (a part a viewer left waiting for) reaches onair
	// within onair's 10 s limit on blocking requests.
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		n := soloOrigin.inFlight.Load() + crowdOrigin.inFlight.Load()
		return n == 0, fmt.Sprintf("%d origin requests in flight", n)
	})

	soloCounts, crowdCounts := soloOrigin.snapshot(), crowdOrigin.snapshot()
	soloKinds := checkOrigin(t, "1 viewer", soloCounts)
	crowdKinds := checkOrigin(t, fmt.Sprintf("%d viewers", crowdSize), crowdCounts)
	total := func(m map[string]int) (n int) {
		for _, v := range m {
			n += v
		}
		return n
	}
	players := func(ps []*llhlsPlayer) (requests, hits int64) {
		for _, p := range ps {
			requests += p.requests.Load()
			hits += p.hits.Load()
		}
		return requests, hits
	}
	soloReq, soloHits := players(soloPlayers)
	crowdReq, crowdHits := players(crowdPlayers)
	t.Logf("1 viewer: %d requests to nginx (%d cache hits), %d to onair %v", soloReq, soloHits, total(soloCounts), soloKinds)
	t.Logf("%d viewers: %d requests to nginx (%d cache hits), %d to onair %v", crowdSize, crowdReq, crowdHits, total(crowdCounts), crowdKinds)

	for _, kind := range []string{"part", "blocking playlist", "init"} {
		if soloKinds[kind] == 0 || crowdKinds[kind] == 0 {
			t.Fatalf("no %s reached onair (1 viewer: %v, %d viewers: %v): the viewers did not play LL-HLS through nginx", kind, soloKinds, crowdSize, crowdKinds)
		}
	}
	// The crowd asked nginx about eight times as often as the single viewer did...
	if crowdReq < (crowdSize-2)*soloReq {
		t.Errorf("%d viewers made %d requests, 1 viewer %d: the viewers did not all play", crowdSize, crowdReq, soloReq)
	}
	// ...but onair saw about as many requests from either nginx: the same parts and
	// playlists, each once, plus a few first playlists from viewers that started apart.
	if got, limit := total(crowdCounts), total(soloCounts)*3/2+crowdSize; got > limit {
		t.Errorf("onair served %d requests for %d viewers, %d for 1: want at most %d", got, crowdSize, total(soloCounts), limit)
	}

	// Viewers rewinding at the same moment: concurrent misses of whole segments make one
	// origin request each, and every viewer gets the same bytes.
	_, media := mediaPlaylist(t, o, o.HTTP+"/live/cam/index.m3u8")
	var segs []string
	for _, m := range uriLine.FindAllSubmatch(media, -1) {
		if u := string(m[1]); hlsSegmentRE.MatchString(stripQuery(u)) {
			segs = append(segs, u)
		}
	}
	if len(segs) < 3 {
		t.Fatalf("want 3 segments in the playlist, got %d:\n%s", len(segs), media)
	}
	segs = segs[len(segs)-3:]
	before := crowdOrigin.snapshot()
	bodies := make([][][]byte, crowdSize)
	var wg sync.WaitGroup
	for i := range crowdSize {
		wg.Go(func() {
			for _, s := range segs {
				code, h, body := getURL(t, crowdCDN.URL+"/live/cam/"+s)
				// What a player on another origin needs, from the cache as from onair.
				if code != http.StatusOK || h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(h.Get("Cache-Control"), "immutable") {
					t.Errorf("segment %s through nginx: %d, Access-Control-Allow-Origin %q, Cache-Control %q",
						s, code, h.Get("Access-Control-Allow-Origin"), h.Get("Cache-Control"))
				}
				bodies[i] = append(bodies[i], body)
			}
		})
	}
	wg.Wait()
	after := crowdOrigin.snapshot()
	for j, s := range segs {
		uri := "/live/cam/" + s
		if n := after[uri] - before[uri]; n != 1 {
			t.Errorf("%d viewers fetching segment %s at once: %d origin requests, want 1", crowdSize, s, n)
		}
		for i := 1; i < crowdSize; i++ {
			if !bytes.Equal(bodies[i][j], bodies[0][j]) || len(bodies[0][j]) == 0 {
				t.Errorf("segment %s: viewer %d got %d bytes, viewer 0 %d", s, i, len(bodies[i][j]), len(bodies[0][j]))
			}
		}
	}

	// A CORS preflight and the routes besides HLS pass through to onair, uncached.
	req, err := http.NewRequest(http.MethodOptions, crowdCDN.URL+"/live/cam/"+segs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "https://embed.example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "range")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("preflight through nginx: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") {
		t.Errorf("preflight through nginx: %d, Access-Control-Allow-Methods %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Methods"))
	}
	for range 2 {
		code, h, body := getURL(t, crowdCDN.URL+"/healthz")
		if code != http.StatusOK || string(body) != "ok\n" || h.Get("X-Cache-Status") != "" {
			t.Errorf("/healthz through nginx: %d %q, X-Cache-Status %q: want onair's answer, uncached", code, body, h.Get("X-Cache-Status"))
		}
	}
	if n := crowdOrigin.snapshot()["/healthz"]; n != 2 {
		t.Errorf("/healthz twice through nginx: %d origin requests, want 2", n)
	}
}

func stripQuery(u string) string {
	p, _, _ := strings.Cut(u, "?")
	return p
}

// getURL fetches url and returns the status, header and body; errors fail the test.
func getURL(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, http.Header{}, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, resp.Header, b
}
