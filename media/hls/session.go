package hls

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"onair/media"
)

// session is one run of a stream on HLS: its muxer while live, then its final playlists
// during the grace period after the publisher left.
type session struct {
	id         string
	name       string
	dir        string
	log        *slog.Logger
	muxer      *gohlslib.Muxer
	video      *gohlslib.Track
	videoCodec media.Codec
	audio      *gohlslib.Track
	responses  responses

	// ended is closed once final and finalFiles are set; they are read-only after that.
	ended      chan struct{}
	endTime    time.Time
	final      map[string][]byte // playlist file → final playlist with EXT-X-ENDLIST
	finalFiles map[string]bool   // init files and segments the final playlists refer to

	closeOnce sync.Once
}

func (sess *session) endedAt() (time.Time, bool) {
	select {
	case <-sess.ended:
		return sess.endTime, true
	default:
		return time.Time{}, false
	}
}

// finish freezes the session's playlists with EXT-X-ENDLIST so that players reach the end
// instead of waiting for parts that will never come. It reports false when the stream
// ended before it had anything to play.
func (sess *session) finish(cfg Config) bool {
	multivariant, ok := sess.fetchNow("index.m3u8")
	final := map[string][]byte{}
	files := map[string]bool{}
	if ok {
		final["index.m3u8"] = multivariant
		var mv playlist.Multivariant
		if err := mv.Unmarshal(multivariant); err != nil {
			sess.log.Warn("hls: cannot read own multivariant playlist", "err", err)
			ok = false
		}
		var uris []string
		for _, v := range mv.Variants {
			uris = append(uris, v.URI)
		}
		for _, r := range mv.Renditions {
			if r.URI != nil {
				uris = append(uris, *r.URI)
			}
		}
		for _, uri := range uris {
			file := stripQuery(uri)
			body, got := sess.fetchNow(file)
			if !got {
				continue
			}
			ended, refs, err := endPlaylist(body)
			if err != nil {
				sess.log.Warn("hls: cannot end playlist", "file", file, "err", err)
				continue
			}
			final[file] = ended
			for _, r := range refs {
				files[stripQuery(r)] = true
			}
		}
	}
	sess.final = final
	sess.finalFiles = files
	sess.endTime = time.Now()
	close(sess.ended)
	return ok && len(final) > 1
}

// fetchNow asks the muxer for a playlist it can answer at once; a muxer without content
// would block, so give up quickly in that case.
func (sess *session) fetchNow(file string) ([]byte, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/"+file+"?s="+sess.id, nil)
	if err != nil {
		return nil, false
	}
	rec := newBufferedResponse()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sess.muxer.Handle(rec, req)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, false // the goroutine returns when the muxer closes
	}
	if rec.code != http.StatusOK || rec.body.Len() == 0 {
		return nil, false
	}
	return rec.body.Bytes(), true
}

// endPlaylist turns a live media playlist into its final form: whole segments only,
// EXT-X-ENDLIST, nothing to block on. It returns the URIs the playlist refers to.
func endPlaylist(body []byte) ([]byte, []string, error) {
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		return nil, nil, err
	}
	pl.ServerControl = nil
	pl.PartInf = nil
	pl.Parts = nil
	pl.PreloadHint = nil
	pl.RenditionReport = nil
	pl.Skip = nil
	pl.Endlist = true
	var refs []string
	if pl.Map != nil {
		refs = append(refs, pl.Map.URI)
	}
	for _, seg := range pl.Segments {
		seg.Parts = nil
		if !seg.Gap {
			refs = append(refs, seg.URI)
		}
	}
	out, err := pl.Marshal()
	if err != nil {
		return nil, nil, err
	}
	return out, refs, nil
}

// close stops the muxer, which wakes every request still waiting on it, and deletes the
// segments on disk.
func (sess *session) close() {
	sess.closeOnce.Do(func() {
		sess.muxer.Close()
		if err := os.RemoveAll(sess.dir); err != nil {
			sess.log.Warn("hls: remove segments", "dir", sess.dir, "err", err)
		}
	})
}

func stripQuery(uri string) string {
	file, _, _ := strings.Cut(uri, "?")
	return file
}

// bufferedResponse holds a muxer answer that may take a while (a blocking playlist or a
// preload-hinted part), so that the request can stop waiting when the stream ends.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func newBufferedResponse() *bufferedResponse { return &bufferedResponse{header: http.Header{}} }

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}
