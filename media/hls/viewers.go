package hls

import (
	"hash/maphash"
	"net"
	"net/http"
	"sync"
	"time"
)

// viewerWindow is how recently a client must have fetched something to count as watching.
// Players reload LL-HLS playlists several times a second and classic ones every segment.
const viewerWindow = 10 * time.Second

// maxTrackedViewers bounds the memory one stream's estimate can take.
const maxTrackedViewers = 200_000

// viewers estimates the concurrent viewers of one stream run from its HLS requests: a
// viewer is a distinct client (address and user agent) seen within viewerWindow. Behind a
// CDN the origin sees the CDN, so the estimate is a floor there.
type viewers struct {
	seed maphash.Seed

	mu    sync.Mutex
	seen  map[uint64]time.Time
	peak  int
	total int
}

func newViewers() *viewers {
	return &viewers{seed: maphash.MakeSeed(), seen: map[uint64]time.Time{}}
}

func (v *viewers) note(r *http.Request, now time.Time) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	var h maphash.Hash
	h.SetSeed(v.seed)
	h.WriteString(host)
	h.WriteByte(0)
	h.WriteString(r.UserAgent())
	key := h.Sum64()

	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.seen[key]; !ok {
		if len(v.seen) >= maxTrackedViewers {
			v.expireLocked(now)
			if len(v.seen) >= maxTrackedViewers {
				return
			}
		}
		v.total++
	}
	v.seen[key] = now
}

// count expires old clients and returns the current estimate, the peak and the number of
// distinct clients seen since the run began.
func (v *viewers) count(now time.Time) (current, peak, total int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.expireLocked(now)
	current = len(v.seen)
	v.peak = max(v.peak, current)
	return current, v.peak, v.total
}

func (v *viewers) expireLocked(now time.Time) {
	for k, t := range v.seen {
		if now.Sub(t) > viewerWindow {
			delete(v.seen, k)
		}
	}
}

// Viewers is a stream's viewer estimate.
type Viewers struct {
	Current, Peak, Total int
}

// Viewers returns the estimate for the stream called name (zero when it is not live).
func (s *Server) Viewers(name string) Viewers {
	sess := s.lookup(name)
	if sess == nil {
		return Viewers{}
	}
	c, p, t := sess.viewers.count(time.Now())
	return Viewers{Current: c, Peak: p, Total: t}
}
