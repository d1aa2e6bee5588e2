package oldkit

import (
	"context"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func NodeName(k int) string { return string(rune('A' + k)) }

// churnPlayer is one LL-HLS viewer: the live benchmark's probe, joining again 250 ms
// after an error (its node or its stream's run went away) on the same node.
type ChurnPlayer struct {
	node, Room int
	rec        FetchLog
	Rejoins    atomic.Int64
	mu         sync.Mutex
	errs       []churnError // why it joined again
}

type churnError struct {
	at  time.Time
	err error
}

// startPlayers starts n players, each from a loopback address of its own, as viewers in
// different homes (onair counts at most 8 per address); at(i) says which node and room
// player i watches, and its URL. The returned func waits for them once ctx ends.
func StartPlayers(ctx context.Context, n int, at func(i int) (node, room int, url string)) ([]*ChurnPlayer, func()) {
	var wg sync.WaitGroup
	players := make([]*ChurnPlayer, n)
	for i := range players {
		node, room, url := at(i)
		p := &ChurnPlayer{node: node, Room: room}
		players[i] = p
		client := NewHTTPClient()
		local := &net.TCPAddr{IP: net.IPv4(127, 1, byte(i/250), byte(1+i%250))}
		client.Transport.(*http.Transport).DialContext = (&net.Dialer{Timeout: 5 * time.Second, LocalAddr: local}).DialContext
		probe := &LlhlsProbe{Client: client, Url: url, Retry: 250 * time.Millisecond,
			scan: func([]byte) ([]frameInfo, error) { return nil, nil }}
		wg.Go(func() {
			defer client.CloseIdleConnections()
			for {
				if err := probe.Run(ctx, &p.rec); err != nil && ctx.Err() == nil {
					p.mu.Lock()
					p.errs = append(p.errs, churnError{time.Now(), err})
					p.mu.Unlock()
				}
				if SleepUntil(ctx, time.Now().Add(250*time.Millisecond)) != nil {
					return
				}
				p.Rejoins.Add(1)
			}
		})
		_ = SleepUntil(ctx, time.Now().Add(5*time.Millisecond)) // audiences arrive spread out
	}
	return players, wg.Wait
}

// arrivals are when the player first got each part, in seconds since t0, in order.
func (p *ChurnPlayer) Arrivals(t0 time.Time) []float64 {
	first := map[string]time.Time{}
	for _, f := range p.rec.All() {
		if a, ok := first[f.URL]; f.Err == nil && (!ok || f.Arrived.Before(a)) {
			first[f.URL] = f.Arrived
		}
	}
	out := make([]float64, 0, len(first))
	for _, a := range first {
		out = append(out, a.Sub(t0).Seconds())
	}
	slices.Sort(out)
	return out
}

// watch is what the player saw, in seconds since t0; errors lose their URLs.
func (p *ChurnPlayer) Watch(t0 time.Time) ChurnWatch {
	w := ChurnWatch{Node: NodeName(p.node), Room: p.Room, Arrivals: p.Arrivals(t0)}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		w.errs = append(w.errs, churnNote{e.at.Sub(t0).Seconds(), shortError(e.err)})
	}
	return w
}

// shortError leaves the URLs out of an HTTP client's error.
func shortError(err error) string { return urlRE.ReplaceAllString(err.Error(), "") }

var urlRE = regexp.MustCompile(`(GET |Get ")?https?://\S+ ?`)
