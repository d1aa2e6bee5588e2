package oldkit

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"
)

// hlsProbe plays an HLS stream the way a good player would and records when each part or
// segment arrived and which frames it held.
type HlsProbe interface {
	Run(ctx context.Context, rec *FetchLog) error
	// Describe says how it plays, for the report.
	Describe() string
}

// fetchResult is one media object the probe downloaded.
type FetchResult struct {
	URL     string
	Arrived time.Time
	Bytes   int
	Frames  []frameInfo
	Err     error
	// Failed is when Err happened.
	Failed time.Time
}

// fetchLog collects the probe's downloads; its methods are safe for concurrent use.
type FetchLog struct {
	mu      sync.Mutex
	fetches []FetchResult
}

func (l *FetchLog) add(r FetchResult) {
	l.mu.Lock()
	l.fetches = append(l.fetches, r)
	l.mu.Unlock()
}

func (l *FetchLog) All() []FetchResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]FetchResult(nil), l.fetches...)
}

// fetchMedia downloads one part or segment, finds its frames with scan and records it.
func FetchMedia(ctx context.Context, client *http.Client, u string, scan func([]byte) ([]frameInfo, error), rec *FetchLog) {
	body, arrived, err := HttpGet(ctx, client, u)
	if err != nil {
		if ctx.Err() == nil {
			rec.add(FetchResult{URL: u, Err: err, Failed: time.Now()})
		}
		return
	}
	frames, err := scan(body)
	rec.add(FetchResult{URL: u, Arrived: arrived, Bytes: len(body), Frames: frames, Err: err})
}

// resolveURL resolves a playlist's relative URI against the playlist's URL.
func ResolveURL(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(r).String(), nil
}

// firstIDRArrival is when the first downloaded object holding an IDR picture arrived.
func FirstIDRArrival(fetches []FetchResult) (time.Time, bool) {
	var first time.Time
	for _, f := range fetches {
		if f.Err != nil {
			continue
		}
		for _, fr := range f.Frames {
			if fr.idr && (first.IsZero() || f.Arrived.Before(first)) {
				first = f.Arrived
			}
		}
	}
	return first, !first.IsZero()
}

// frameLatencies returns, for every stamped frame sent in [from, to), the time from its
// stamp to the first arrival of an object holding it, in send order.
func FrameLatencies(fetches []FetchResult, from, to time.Time) []time.Duration {
	arrival := map[int64]time.Time{}
	for _, f := range fetches {
		if f.Err != nil {
			continue
		}
		for _, fr := range f.Frames {
			if !fr.hasStamp {
				continue
			}
			if a, ok := arrival[fr.stamp]; !ok || f.Arrived.Before(a) {
				arrival[fr.stamp] = f.Arrived
			}
		}
	}
	stamps := make([]int64, 0, len(arrival))
	for s := range arrival {
		if s >= from.UnixNano() && s < to.UnixNano() {
			stamps = append(stamps, s)
		}
	}
	sort.Slice(stamps, func(i, j int) bool { return stamps[i] < stamps[j] })
	out := make([]time.Duration, len(stamps))
	for i, s := range stamps {
		out[i] = arrival[s].Sub(time.Unix(0, s))
	}
	return out
}

// fetchErrors counts the downloads that failed before t (once a stream ends, requests
// waiting for its next part fail as they should).
func FetchErrors(fetches []FetchResult, t time.Time) (int, error) {
	n := 0
	var first error
	for _, f := range fetches {
		if f.Err != nil && f.Failed.Before(t) {
			if first == nil {
				first = f.Err
			}
			n++
		}
	}
	return n, first
}
