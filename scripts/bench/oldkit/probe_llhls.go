package oldkit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// llhlsProbe plays Low-Latency HLS as a good player does: it reads the multivariant
// playlist, picks the video media playlist, starts at the newest independent part, then
// reloads the playlist with blocking requests (_HLS_msn, _HLS_part) for the next part,
// fetches each new part as soon as it is listed and requests the EXT-X-PRELOAD-HINT part
// ahead (the server answers it when the part is complete).
type LlhlsProbe struct {
	Client *http.Client
	// url is the multivariant playlist, e.g. http://host/live/name/index.m3u8.
	Url string
	// retry is the interval between attempts while the stream is not there yet.
	Retry time.Duration
	// scan finds the frames of each part; nil is scanFMP4. Players that only note when
	// parts arrive skip the parsing, which hundreds of them cannot afford on two cores.
	scan func([]byte) ([]frameInfo, error)
}

// partRef is one part of a media playlist, by media sequence number and index.
type partRef struct {
	msn, index  int
	uri         string
	independent bool
	// last marks the final part of a complete segment.
	last bool
}

func (p partRef) after(q partRef) bool {
	return p.msn > q.msn || (p.msn == q.msn && p.index > q.index)
}

// next returns the _HLS_msn and _HLS_part of the part after p. After the final part of a
// complete segment that is part 0 of the next segment, as hls.js asks for it.
func (p partRef) next() (msn, part int) {
	if p.last {
		return p.msn + 1, 0
	}
	return p.msn, p.index + 1
}

func (p *LlhlsProbe) Describe() string {
	return "LL-HLS (fMP4 parts): blocking playlist reloads (`_HLS_msn`/`_HLS_part`), each new part fetched when listed, " +
		"EXT-X-PRELOAD-HINT part requested ahead"
}

// Run plays until ctx ends.
func (p *LlhlsProbe) Run(ctx context.Context, rec *FetchLog) error {
	body, err := HttpGetUntilFound(ctx, p.Client, p.Url, p.Retry)
	if err != nil {
		return fmt.Errorf("ll-hls probe: %w", err)
	}
	var mv playlist.Multivariant
	if err := mv.Unmarshal(body); err != nil {
		return fmt.Errorf("ll-hls probe: multivariant playlist: %w", err)
	}
	if len(mv.Variants) == 0 {
		return errors.New("ll-hls probe: multivariant playlist has no variant")
	}
	mediaURL, err := ResolveURL(p.Url, mv.Variants[0].URI)
	if err != nil {
		return fmt.Errorf("ll-hls probe: variant URI: %w", err)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	requested := map[string]bool{}
	fetch := func(uri string) {
		if requested[uri] {
			return
		}
		requested[uri] = true
		u, err := ResolveURL(mediaURL, uri)
		if err != nil {
			rec.add(FetchResult{URL: uri, Err: err, Failed: time.Now()})
			return
		}
		scan := p.scan
		if scan == nil {
			scan = scanFMP4
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			FetchMedia(ctx, p.Client, u, scan, rec)
		}()
	}

	pl, err := p.mediaPlaylist(ctx, mediaURL)
	if err != nil {
		return err
	}
	if pl.Map != nil { // a player needs the init section before the first part
		u, err := ResolveURL(mediaURL, pl.Map.URI)
		if err != nil {
			return fmt.Errorf("ll-hls probe: init URI: %w", err)
		}
		if _, _, err := HttpGet(ctx, p.Client, u); err != nil {
			return fmt.Errorf("ll-hls probe: init section: %w", err)
		}
	}
	parts := listParts(pl)
	start := 0
	for i, part := range parts {
		if part.independent {
			start = i
		}
	}
	last := partRef{msn: pl.MediaSequence + len(pl.Segments), index: -1}
	for _, part := range parts[start:] {
		fetch(part.uri)
		last = part
	}
	if pl.PreloadHint != nil {
		fetch(pl.PreloadHint.URI)
	}

	for ctx.Err() == nil {
		msn, part := last.next()
		reload := mediaURL + sep(mediaURL) + "_HLS_msn=" + strconv.Itoa(msn) + "&_HLS_part=" + strconv.Itoa(part)
		pl, err = p.mediaPlaylist(ctx, reload)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, part := range listParts(pl) {
			if part.after(last) {
				fetch(part.uri)
				last = part
			}
		}
		if pl.Endlist {
			// The run is over: onair answers every later reload at once with this same
			// playlist, so asking on would spin.
			return nil
		}
		if pl.PreloadHint != nil {
			fetch(pl.PreloadHint.URI)
		}
	}
	return nil
}

func (p *LlhlsProbe) mediaPlaylist(ctx context.Context, u string) (*playlist.Media, error) {
	body, _, err := HttpGet(ctx, p.Client, u)
	if err != nil {
		return nil, fmt.Errorf("ll-hls probe: media playlist: %w", err)
	}
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("ll-hls probe: media playlist %s: %w", u, err)
	}
	return &pl, nil
}

// listParts lists a media playlist's parts in order: those of complete segments, then
// those of the segment in progress.
func listParts(pl *playlist.Media) []partRef {
	var out []partRef
	for i, seg := range pl.Segments {
		for j, part := range seg.Parts {
			out = append(out, partRef{msn: pl.MediaSequence + i, index: j, uri: part.URI,
				independent: part.Independent, last: j == len(seg.Parts)-1})
		}
	}
	msn := pl.MediaSequence + len(pl.Segments)
	for j, part := range pl.Parts {
		out = append(out, partRef{msn: msn, index: j, uri: part.URI, independent: part.Independent})
	}
	return out
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}
