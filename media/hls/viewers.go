package hls

import (
	"hash/maphash"
	"sync"
	"time"
)

// viewerWindow is how recently a client must have fetched a media playlist to count as
// watching. Players reload LL-HLS playlists several times a second and classic ones every
// segment.
const viewerWindow = 10 * time.Second

// maxViewersPerAddress is how many viewers one client address counts as at most, however
// many user agents it sends. Households and offices share one address behind NAT, so a
// few viewers per address are real; beyond that, a client rotating its User-Agent would
// inflate the count at will. Behind carrier-grade NAT, or a CDN (whose few addresses are
// all the origin sees), the estimate is a floor.
const maxViewersPerAddress = 8

// maxTrackedAddresses bounds the memory of the estimates, over all streams: past it, new
// addresses are not counted until others leave.
const maxTrackedAddresses = 200_000

// maxTrackedStreams bounds how many streams an Audience follows at once.
const maxTrackedStreams = 10_000

// sweepEvery spaces the sweeps that Note makes when a bound is reached, so that a flood
// of new clients cannot make every request walk the whole table.
const sweepEvery = time.Second

// Audience estimates how many viewers watch each stream from the HLS requests it is told
// of: a viewer is a distinct client (address and user agent) that fetched one of the
// stream's media playlists within viewerWindow, at most maxViewersPerAddress per address.
// It is safe for concurrent use.
type Audience struct {
	seed maphash.Seed

	mu      sync.Mutex
	streams map[string]map[uint64][]client // stream → address hash → its clients
	addrs   int                            // addresses tracked over all streams
	swept   time.Time
}

// client is one user agent seen from an address.
type client struct {
	ua   uint64 // hash of the User-Agent
	seen int64  // Unix nanoseconds of its last media playlist request
}

// NewAudience returns an empty Audience.
func NewAudience() *Audience {
	return &Audience{seed: maphash.MakeSeed(), streams: map[string]map[uint64][]client{}}
}

// Note counts a request for file of stream from the client at addr with user agent ua.
// Only media playlists count: every player reloads them for as long as it plays, whereas
// parts and segments may come from a cache another viewer filled.
func (a *Audience) Note(stream, file, addr, ua string, now time.Time) {
	if classify(file) != kindMediaPlaylist {
		return
	}
	ak, uk, t := maphash.String(a.seed, addr), maphash.String(a.seed, ua), now.UnixNano()
	window := viewerWindow.Nanoseconds()

	a.mu.Lock()
	defer a.mu.Unlock()
	if _, known := a.streams[stream][ak]; !known && a.fullLocked(stream) {
		if now.Sub(a.swept) >= sweepEvery {
			a.sweepLocked(now)
		}
		if a.fullLocked(stream) {
			return
		}
	}
	byAddr := a.streams[stream]
	if byAddr == nil {
		byAddr = map[uint64][]client{}
		a.streams[stream] = byAddr
	}
	clients, known := byAddr[ak]
	free := -1
	for i := range clients {
		switch {
		case clients[i].ua == uk:
			clients[i].seen = t
			return
		case free < 0 && t-clients[i].seen > window:
			free = i
		}
	}
	switch {
	case free >= 0:
		clients[free] = client{ua: uk, seen: t}
	case len(clients) < maxViewersPerAddress:
		byAddr[ak] = append(clients, client{ua: uk, seen: t})
		if !known {
			a.addrs++
		}
	}
	// Otherwise the address counts as many viewers as one address may already.
}

// Counts returns the estimate of every stream that has viewers now.
func (a *Audience) Counts(now time.Time) map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweepLocked(now)
	out := make(map[string]int, len(a.streams))
	for name, byAddr := range a.streams {
		n := 0
		for _, clients := range byAddr {
			n += len(clients)
		}
		out[name] = n
	}
	return out
}

// fullLocked reports whether a new address of stream would pass a bound.
func (a *Audience) fullLocked(stream string) bool {
	if _, ok := a.streams[stream]; !ok && len(a.streams) >= maxTrackedStreams {
		return true
	}
	return a.addrs >= maxTrackedAddresses
}

// sweepLocked forgets the clients that left, then the addresses and streams left empty.
func (a *Audience) sweepLocked(now time.Time) {
	a.swept = now
	cut := now.UnixNano() - viewerWindow.Nanoseconds()
	for name, byAddr := range a.streams {
		for ak, clients := range byAddr {
			kept := clients[:0]
			for _, c := range clients {
				if c.seen >= cut {
					kept = append(kept, c)
				}
			}
			if len(kept) == 0 {
				delete(byAddr, ak)
				a.addrs--
				continue
			}
			byAddr[ak] = kept
		}
		if len(byAddr) == 0 {
			delete(a.streams, name)
		}
	}
}
