package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// The live benchmark's publisher stamps every video access unit with an H.264 SEI NAL
// unit (user_data_unregistered) holding StampUUID and the wall-clock time at which it
// sent it, as 19 decimal digits of Unix nanoseconds: digits hold no zero byte, so the
// NAL unit needs no emulation prevention. Servers pass SEI through to HLS, where the
// player finds the stamp again.
const StampUUID = "onair-bench-sei2"

// StampNAL is the SEI NAL unit (header included) carrying sendTime.
func StampNAL(sendTime int64) []byte {
	payload := fmt.Sprintf("%s%019d", StampUUID, sendTime)
	return append([]byte{byte(h264.NALUTypeSEI), 5, byte(len(payload))}, append([]byte(payload), 0x80)...)
}

// Frame is what the player needs from one received video access unit.
type Frame struct {
	Stamp int64 // send time; 0 when the access unit carries no stamp
	IDR   bool
}

// InspectAU looks at the NAL units of one access unit.
func InspectAU(nalus [][]byte) Frame {
	var f Frame
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeIDR:
			f.IDR = true
		case h264.NALUTypeSEI:
			if i := bytes.Index(n, []byte(StampUUID)); i > 0 && f.Stamp == 0 && len(n) >= i+16+19 {
				f.Stamp, _ = strconv.ParseInt(string(n[i+16:i+16+19]), 10, 64)
			}
		}
	}
	return f
}

// ScanFMP4 returns the video access units of an fMP4 part or segment. Every track is
// read as H.264: the player only fetches video playlists.
func ScanFMP4(body []byte) ([]Frame, error) {
	var parts fmp4.Parts
	if err := parts.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("fmp4: %w", err)
	}
	var out []Frame
	for _, part := range parts {
		for _, track := range part.Tracks {
			for _, sample := range track.Samples {
				var au h264.AVCC
				if err := au.Unmarshal(sample.Payload); err != nil {
					return nil, fmt.Errorf("fmp4: track %d sample: %w", track.ID, err)
				}
				out = append(out, InspectAU(au))
			}
		}
	}
	return out, nil
}

// Fetch is one media object the player downloaded.
type Fetch struct {
	URL     string
	Arrived time.Time // or, with Err, when it failed
	Frames  []Frame
	Err     error
}

// FetchLog collects a player's downloads; its methods are safe for concurrent use.
type FetchLog struct {
	mu      sync.Mutex
	fetches []Fetch
}

// Get downloads one part or segment, finds its frames with scan (none when nil) and
// records it.
func (l *FetchLog) Get(ctx context.Context, client *http.Client, u string, scan func([]byte) ([]Frame, error)) {
	body, arrived, err := HTTPGet(ctx, client, u)
	if ctx.Err() != nil {
		return
	}
	f := Fetch{URL: u, Arrived: arrived, Err: err}
	if err != nil {
		f.Arrived = time.Now()
	} else if scan != nil {
		f.Frames, f.Err = scan(body)
	}
	l.mu.Lock()
	l.fetches = append(l.fetches, f)
	l.mu.Unlock()
}

// All returns the downloads so far.
func (l *FetchLog) All() []Fetch {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.fetches)
}

// Resolve resolves a playlist's relative URI against the playlist's URL.
func Resolve(base, ref string) string {
	b, _ := url.Parse(base)
	r, err := url.Parse(ref)
	if b == nil || err != nil {
		return ref
	}
	return b.ResolveReference(r).String()
}

// Player plays Low-Latency HLS as a good player does: it reads the multivariant playlist,
// picks the video media playlist, loads the init section, starts at the newest
// independent part, then reloads the playlist with blocking requests (_HLS_msn,
// _HLS_part) for the next part, fetches each new part as soon as it is listed and
// requests the EXT-X-PRELOAD-HINT part ahead.
type Player struct {
	Client  *http.Client
	URL     string        // the multivariant playlist
	Variant int           // which of its variants to play
	Retry   time.Duration // between attempts while the stream is not there yet
	// Scan finds the frames of each part; nil only notes arrivals, which is what hundreds
	// of players on two cores can afford.
	Scan func([]byte) ([]Frame, error)
}

// Describe says how it plays, for the report.
func (p *Player) Describe() string {
	return "LL-HLS (fMP4 parts): blocking playlist reloads (`_HLS_msn`/`_HLS_part`), each new part fetched when listed, " +
		"EXT-X-PRELOAD-HINT part requested ahead"
}

// part is one part of a media playlist, by media sequence number and index; last marks
// the final part of a complete segment.
type part struct {
	msn, index        int
	uri               string
	independent, last bool
}

func (p part) after(q part) bool { return p.msn > q.msn || (p.msn == q.msn && p.index > q.index) }

// Run plays until ctx ends or the stream does.
func (p *Player) Run(ctx context.Context, rec *FetchLog) error {
	body, err := HTTPGetUntilFound(ctx, p.Client, p.URL, p.Retry)
	if err != nil {
		return fmt.Errorf("ll-hls player: %w", err)
	}
	var mv playlist.Multivariant
	if err := mv.Unmarshal(body); err != nil || len(mv.Variants) <= p.Variant {
		return fmt.Errorf("ll-hls player: multivariant playlist without variant %d (%v)", p.Variant, err)
	}
	mediaURL := Resolve(p.URL, mv.Variants[p.Variant].URI)
	var wg sync.WaitGroup
	defer wg.Wait()
	requested := map[string]bool{}
	fetch := func(uri string) {
		if !requested[uri] {
			requested[uri] = true
			wg.Go(func() { rec.Get(ctx, p.Client, Resolve(mediaURL, uri), p.Scan) })
		}
	}
	pl, err := p.media(ctx, mediaURL)
	if err != nil {
		return err
	}
	if pl.Map != nil { // a player needs the init section before the first part
		if _, _, err := HTTPGet(ctx, p.Client, Resolve(mediaURL, pl.Map.URI)); err != nil {
			return fmt.Errorf("ll-hls player: init section: %w", err)
		}
	}
	parts := listParts(pl)
	start := 0
	for i, pt := range parts {
		if pt.independent {
			start = i
		}
	}
	last := part{msn: pl.MediaSequence + len(pl.Segments), index: -1}
	for _, pt := range parts[start:] {
		fetch(pt.uri)
		last = pt
	}
	for ctx.Err() == nil {
		if pl.Endlist {
			return nil // the run is over: every later reload would answer at once
		}
		if pl.PreloadHint != nil {
			fetch(pl.PreloadHint.URI)
		}
		// After the final part of a complete segment, ask for part 0 of the next, as
		// hls.js does.
		msn, idx := last.msn, last.index+1
		if last.last {
			msn, idx = last.msn+1, 0
		}
		sep := map[bool]string{true: "&", false: "?"}[strings.Contains(mediaURL, "?")]
		if pl, err = p.media(ctx, fmt.Sprintf("%s%s_HLS_msn=%d&_HLS_part=%d", mediaURL, sep, msn, idx)); err != nil {
			return err
		}
		for _, pt := range listParts(pl) {
			if pt.after(last) {
				fetch(pt.uri)
				last = pt
			}
		}
	}
	return nil
}

func (p *Player) media(ctx context.Context, u string) (*playlist.Media, error) {
	body, _, err := HTTPGet(ctx, p.Client, u)
	var pl playlist.Media
	if err == nil {
		err = pl.Unmarshal(body)
	}
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("ll-hls player: media playlist: %w", err)
	}
	return &pl, nil
}

// listParts lists a media playlist's parts in order: those of complete segments, then
// those of the segment in progress.
func listParts(pl *playlist.Media) []part {
	var out []part
	for i, seg := range pl.Segments {
		for j, pt := range seg.Parts {
			out = append(out, part{pl.MediaSequence + i, j, pt.URI, pt.Independent, j == len(seg.Parts)-1})
		}
	}
	for j, pt := range pl.Parts {
		out = append(out, part{pl.MediaSequence + len(pl.Segments), j, pt.URI, pt.Independent, false})
	}
	return out
}

// Viewer is one LL-HLS player that joins again 250 ms after an error (its node or its
// stream's run went away).
type Viewer struct {
	Node, Room int
	Rejoins    atomic.Int64
	rec        FetchLog
	mu         sync.Mutex
	errs       []note // why it joined again
}

type note struct {
	at  time.Time
	msg string
}

// urlRE finds the URLs in an HTTP client's error.
var urlRE = regexp.MustCompile(`(GET |Get ")?https?://\S+ ?`)

// StartViewers starts n viewers, each from a loopback address of its own, as viewers in
// different homes (onair counts at most 8 per address); at(i) says which node and room
// viewer i watches, and its URL. The returned func waits for them once ctx ends.
func StartViewers(ctx context.Context, n int, at func(i int) (node, room int, url string)) ([]*Viewer, func()) {
	var wg sync.WaitGroup
	viewers := make([]*Viewer, n)
	for i := range viewers {
		node, room, u := at(i)
		v := &Viewer{Node: node, Room: room}
		viewers[i] = v
		client := NewHTTPClient()
		local := &net.TCPAddr{IP: net.IPv4(127, 1, byte(i/250), byte(1+i%250))}
		client.Transport.(*http.Transport).DialContext = (&net.Dialer{Timeout: 5 * time.Second, LocalAddr: local}).DialContext
		player := &Player{Client: client, URL: u, Retry: 250 * time.Millisecond}
		wg.Go(func() {
			defer client.CloseIdleConnections()
			for {
				if err := player.Run(ctx, &v.rec); err != nil && ctx.Err() == nil {
					v.mu.Lock()
					v.errs = append(v.errs, note{time.Now(), urlRE.ReplaceAllString(err.Error(), "")})
					v.mu.Unlock()
				}
				if SleepUntil(ctx, time.Now().Add(250*time.Millisecond)) != nil {
					return
				}
				v.Rejoins.Add(1)
			}
		})
		_ = SleepUntil(ctx, time.Now().Add(5*time.Millisecond)) // audiences arrive spread out
	}
	return viewers, wg.Wait
}

// Arrivals are when the viewer first got each part, in seconds since t0, in order.
func (v *Viewer) Arrivals(t0 time.Time) []float64 {
	first := map[string]time.Time{}
	for _, f := range v.rec.All() {
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

// ErrsIn lists the distinct errors the viewer met in [from, to] (seconds since t0), with
// how many times.
func (v *Viewer) ErrsIn(t0 time.Time, from, to float64) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var msgs []string
	n := map[string]int{}
	for _, e := range v.errs {
		if at := e.at.Sub(t0).Seconds(); at >= from && at <= to {
			if n[e.msg]++; n[e.msg] == 1 {
				msgs = append(msgs, e.msg)
			}
		}
	}
	for i, m := range msgs {
		msgs[i] = fmt.Sprintf("%s (×%d)", m, n[m])
	}
	return msgs
}

// LongestGap is the longest time in [from, to) without an arrival (between two, or from
// from to the first, or from the last to to), and when it began.
func LongestGap(arrivals []float64, from, to float64) (gap, at float64) {
	last := from
	for _, a := range arrivals {
		if a >= to {
			break
		}
		if a >= from {
			if a-last > gap {
				gap, at = a-last, last
			}
			last = a
		}
	}
	if to-last > gap {
		gap, at = to-last, last
	}
	return gap, at
}
