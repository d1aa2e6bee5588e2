package web

import (
	"container/list"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"onair/rooms"
)

// OriginNodes finds the node a stream is live on (its origin node) when it is not this
// one. It has nothing to do with the HTTP origins of pages (Config.AllowedPageOrigins).
type OriginNodes interface {
	// Origin returns the base URL of the node serving name and the id of the room the
	// stream belongs to, or an error when no other node serves it, wrapping
	// rooms.ErrUnavailable when MongoDB could not tell.
	Origin(ctx context.Context, name string) (url, room string, err error)
}

// LocalHLS is the HLS server of this node.
type LocalHLS interface {
	http.Handler
	// Live reports whether the stream is being published here now.
	Live(name string) bool
	// Immutable reports whether a file of a stream never changes once served (its media,
	// as opposed to its playlists): what the proxy may cache.
	Immutable(file string) bool
}

// proxiedHeader marks a request one node sends another, so that it is never sent on.
const proxiedHeader = "X-Onair-Proxied"

// originTTL is how long a stream's origin is remembered; a publisher moving to another
// node is picked up after at most this long.
const originTTL = 2 * time.Second

// maxShared bounds a response that concurrent viewers share; larger ones are streamed.
const maxShared = 16 << 20

// hlsProxy serves the HLS of streams live on other nodes: any node serves any room, so
// viewers and a CDN can hit any node. Concurrent requests for one URL make one request to
// the origin; parts, segments and init files, which never change, are cached.
type hlsProxy struct {
	nodes  OriginNodes
	client *http.Client
	flight singleflight.Group
	cache  *byteLRU

	mu     sync.Mutex
	lookup map[string]originEntry
}

type originEntry struct {
	url  string
	room string
	at   time.Time
}

func newHLSProxy(nodes OriginNodes, cacheBytes int64) *hlsProxy {
	return &hlsProxy{
		nodes: nodes,
		client: &http.Client{
			Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: 30 * time.Second},
			// Blocking playlist requests wait at the origin; the viewer's context bounds them.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		cache:  newByteLRU(cacheBytes),
		lookup: map[string]originEntry{},
	}
}

// origin is the base URL of the node name is live on, "" when no other node has it.
func (p *hlsProxy) origin(ctx context.Context, name string) string {
	p.mu.Lock()
	e, ok := p.lookup[name]
	p.mu.Unlock()
	if ok && time.Since(e.at) < originTTL {
		return e.url
	}
	url, room, err := p.nodes.Origin(ctx, name)
	switch {
	case err == nil:
	case errors.Is(err, rooms.ErrUnavailable) && ok && e.url != "":
		// MongoDB did not answer in time (under load, or away): the origin known a moment
		// ago is the best guess, and it says so itself if the stream has left it. Answering
		// 404 instead would send every viewer of the stream through this node away.
		url, room = e.url, e.room
	default:
		url, room = "", ""
	}
	url = strings.TrimSuffix(url, "/")
	p.mu.Lock()
	if len(p.lookup) > 10_000 {
		clear(p.lookup)
	}
	p.lookup[name] = originEntry{url: url, room: room, at: time.Now()}
	p.mu.Unlock()
	return url
}

// room is the room id of a stream this node has fetched from another node lately.
func (p *hlsProxy) room(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lookup[name].room
}

// fetched is a response shared by the viewers who asked for it at the same time.
type fetched struct {
	status int
	header http.Header
	body   []byte
}

var errTooLarge = errors.New("response too large to share")

// serve answers from the origin node at base; immutable says whether the file may be
// cached.
func (p *hlsProxy) serve(w http.ResponseWriter, r *http.Request, base string, immutable bool) {
	target := base + r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	if immutable {
		if f, ok := p.cache.get(target); ok {
			writeFetched(w, f)
			return
		}
	}
	v, err, _ := p.flight.Do(target, func() (any, error) {
		// Shared by every waiting viewer, so not bound to this one's context.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set(proxiedHeader, "1")
		// This node checked the viewer's token; the origin checks this node's.
		if tok := r.Header.Get(playbackHeader); tok != "" {
			req.Header.Set(playbackHeader, tok)
		}
		resp, err := p.client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxShared+1))
		if err != nil {
			return nil, err
		}
		if len(body) > maxShared {
			return nil, errTooLarge
		}
		f := &fetched{status: resp.StatusCode, header: http.Header{}, body: body}
		for _, h := range []string{"Content-Type", "Cache-Control", "Access-Control-Allow-Origin", "Retry-After"} {
			if v := resp.Header.Get(h); v != "" {
				f.header.Set(h, v)
			}
		}
		if immutable && resp.StatusCode == http.StatusOK {
			p.cache.put(target, f)
		}
		return f, nil
	})
	if err != nil {
		if r.Context().Err() == nil {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "origin node unreachable", http.StatusBadGateway)
		}
		return
	}
	writeFetched(w, v.(*fetched))
}

func writeFetched(w http.ResponseWriter, f *fetched) {
	for k, v := range f.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
	w.WriteHeader(f.status)
	_, _ = w.Write(f.body)
}

// byteLRU caches fetched responses up to a total size.
type byteLRU struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // front = most recent; values are *lruItem
	items map[string]*list.Element
}

type lruItem struct {
	key string
	f   *fetched
}

func newByteLRU(max int64) *byteLRU {
	return &byteLRU{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *byteLRU) get(key string) (*fetched, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruItem).f, true
}

func (c *byteLRU) put(key string, f *fetched) {
	n := int64(len(f.body))
	if n > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	c.items[key] = c.order.PushFront(&lruItem{key: key, f: f})
	c.size += n
	for c.size > c.max {
		e := c.order.Back()
		it := e.Value.(*lruItem)
		c.order.Remove(e)
		delete(c.items, it.key)
		c.size -= int64(len(it.f.body))
	}
}

// liveHLS serves /live/{name}/{file}: from this node when the stream is live here, else
// from the node it is live on; a run that ended here is served from here only while no
// other node has taken the stream over. Viewers are counted here, on the node they reach,
// whichever node has the stream; a request another node proxies is that node's viewer,
// counted there. Every request passes the stream's access rule first (playback.go), on
// every node, before the proxy's cache.
func (s *Server) liveHLS(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	mw, r, ok := s.gateLive(w, r, name)
	if !ok {
		return
	}
	if mw != nil {
		defer mw.finish()
		w = mw
	}
	switch {
	case r.Header.Get(proxiedHeader) != "":
		// Never sent on: the node that sent it found the stream here.
	case s.cfg.HLS.Live(name):
		s.countViewer(r, name)
	case s.proxy != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		if base := s.proxy.origin(r.Context(), name); base != "" {
			s.countViewer(r, name)
			if mw != nil {
				r = s.withNodeToken(r, mw.room)
			}
			s.proxy.serve(w, r, base, s.cfg.HLS.Immutable(r.PathValue("file")))
			return
		}
	}
	s.cfg.HLS.ServeHTTP(w, r)
}

// countViewer notes an HLS request of a stream this node serves in its viewer estimate.
func (s *Server) countViewer(r *http.Request, name string) {
	s.audience.Note(name, r.PathValue("file"), s.clientIP(r), r.UserAgent(), time.Now())
}

// RoomOf names the room of a stream this node serves, for metrics labels: its room id
// (an unlisted room's slug must not appear there), or the stream's own name for a stream
// of the config file. "" when this node does not know the stream.
func (s *Server) RoomOf(name string) string {
	if st := s.cfg.Hub.Stream(name); st != nil {
		if r := st.Route(); r.RoomID != "" {
			return r.RoomID
		}
		return name
	}
	if s.proxy != nil {
		return s.proxy.room(name)
	}
	return ""
}

// Viewers is how many viewers watch each stream through this node now: its own streams and
// those it fetches from other nodes.
func (s *Server) Viewers() map[string]int { return s.audience.Counts(time.Now()) }
