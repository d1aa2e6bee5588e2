package live

import (
	"context"
	"fmt"
	"net/http"
	"onair/scripts/bench/oldkit"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// classicProbe plays classic HLS (MPEG-TS segments): it polls the media playlist every
// interval, starts at the newest segment and fetches each new segment as soon as a poll
// lists it.
type classicProbe struct {
	client *http.Client
	// url is the media playlist, e.g. http://host/name.m3u8.
	url string
	// retry is the interval between attempts while the playlist does not exist yet;
	// interval the one between reloads once it does.
	retry, interval time.Duration
}

func (p *classicProbe) Describe() string {
	return fmt.Sprintf("classic HLS (MPEG-TS): playlist polled every %s, each new segment fetched when listed", p.interval)
}

// Run plays until ctx ends.
func (p *classicProbe) Run(ctx context.Context, rec *oldkit.FetchLog) error {
	body, err := oldkit.HttpGetUntilFound(ctx, p.client, p.url, p.retry)
	if err != nil {
		return fmt.Errorf("hls probe: %w", err)
	}
	next := -1 // media sequence number of the next segment to fetch
	for {
		polled := time.Now()
		var pl playlist.Media
		if err := pl.Unmarshal(body); err != nil {
			return fmt.Errorf("hls probe: media playlist %s: %w", p.url, err)
		}
		if next < 0 && len(pl.Segments) > 0 {
			next = pl.MediaSequence + len(pl.Segments) - 1 // join at the live edge
		}
		for i, seg := range pl.Segments {
			msn := pl.MediaSequence + i
			if msn < next {
				continue
			}
			u, err := oldkit.ResolveURL(p.url, seg.URI)
			if err != nil {
				return fmt.Errorf("hls probe: segment URI: %w", err)
			}
			oldkit.FetchMedia(ctx, p.client, u, oldkit.ScanTS, rec)
			next = msn + 1
		}
		if err := oldkit.SleepUntil(ctx, polled.Add(p.interval)); err != nil {
			return nil
		}
		if body, _, err = oldkit.HttpGet(ctx, p.client, p.url); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("hls probe: %w", err)
		}
	}
}
