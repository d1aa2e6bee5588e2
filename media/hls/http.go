package hls

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// ServeHTTP serves /live/{name}/{file}; the router must set the two path values.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ref := parseFile(r.PathValue("file"))
	cw := &countingWriter{ResponseWriter: w}
	s.serve(cw, r, ref)
	st := &s.stats[ref.kind]
	st.requests.Add(1)
	st.bytes.Add(cw.n)
}

// Cache policies. Media files never change (their names are unique to a run). A blocking
// playlist request names the run and the part it waits for, so shared caches may keep the
// answer and collapse viewers' requests, while browsers revalidate (a player may ask the
// same blocking URL again, and must not get its own stale copy). A plain reload must never
// be answered from a cache: the playlist changes with every part, and a stale one makes a
// player fetch again the part it has.
const (
	cacheImmutable    = "public, max-age=31536000, immutable"
	cacheBlocking     = "public, max-age=0, s-maxage=60"
	cacheMultivariant = "public, max-age=1"
	cacheRevalidate   = "no-cache"
)

func (s *Server) serve(w http.ResponseWriter, req *http.Request, ref fileRef) {
	h := w.Header()
	// Players on other origins (an embed, a CDN-hosted page) must be able to read the stream.
	h.Set("Access-Control-Allow-Origin", "*")
	switch req.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Range, Cache-Control")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	r := s.lookup(req.PathValue("name"))
	if r != nil && isRendition(ref.rendition) {
		r = r.sub(ref.rendition)
	}
	if ref.kind == kindUnknown || r == nil {
		writeError(w, http.StatusNotFound, "stream not found")
		return
	}
	sid, pinnedRun := query(req.URL.RawQuery, "s")
	if (pinnedRun && sid != r.id) || (ref.run != "" && ref.run != r.id) {
		writeError(w, http.StatusNotFound, "this run of the stream has ended; reload index.m3u8")
		return
	}
	switch ref.kind {
	case kindMultivariant:
		s.servePlaylist(w, req, r, renderKey{file: multivariantFile}, cacheMultivariant)
	case kindMediaPlaylist:
		s.serveMedia(w, req, r, ref, pinnedRun)
	case kindInit:
		s.serveInit(w, req, r, ref)
	case kindPart:
		s.servePart(w, req, r, ref)
	case kindSegment:
		s.serveSegment(w, req, r, ref)
	}
}

// query finds a parameter in a raw query without parsing it whole: the hot paths read one
// or two.
func query(raw, name string) (string, bool) {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// waitContent waits for the run's first part; false once it answered.
func (s *Server) waitContent(w http.ResponseWriter, req *http.Request, r *run) bool {
	ctx, cancel := context.WithTimeout(req.Context(), s.cfg.PlaylistWait)
	defer cancel()
	if r.wait(ctx, r.hasContent) {
		return true
	}
	switch {
	case req.Context().Err() != nil:
	case ctx.Err() != nil:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "stream is starting; retry")
	default:
		writeError(w, http.StatusNotFound, "the stream ended before it had anything to play")
	}
	return false
}

// serveMedia serves a media playlist, and holds a blocking reload (_HLS_msn, _HLS_part)
// until the part it asks for exists.
func (s *Server) serveMedia(w http.ResponseWriter, req *http.Request, r *run, ref fileRef, pinnedRun bool) {
	file := playlistName(ref.rendition)
	if ref.rendition == renditionAV {
		if !r.fromStartAvailable() {
			writeError(w, http.StatusNotFound, "this run is not kept: it has no playlist from the start")
			return
		}
	} else if r.rendition(ref.rendition) == nil {
		writeError(w, http.StatusNotFound, "no such rendition")
		return
	}
	if !s.waitContent(w, req, r) {
		return
	}
	raw := req.URL.RawQuery
	msnArg, blocking := query(raw, "_HLS_msn")
	cache := cacheRevalidate
	if blocking && ref.rendition != renditionAV {
		msn, err := strconv.Atoi(msnArg)
		part := -1
		if p, ok := query(raw, "_HLS_part"); ok && err == nil {
			part, err = strconv.Atoi(p)
		}
		if err != nil || msn < 0 || part < -1 {
			writeError(w, http.StatusBadRequest, "_HLS_msn and _HLS_part must be numbers")
			return
		}
		if !s.waitPart(w, req, r, msn, part) {
			return
		}
		if pinnedRun {
			cache = cacheBlocking
		}
	}
	skip, _ := query(raw, "_HLS_skip")
	s.servePlaylist(w, req, r, renderKey{file: file, skip: skip == "YES" || skip == "v2"}, cache)
}

// waitPart waits until part (msn, part) exists (part -1: segment msn is complete). A
// request for a part too far ahead to come within the wait is refused at once, as the
// spec asks. false once it answered.
func (s *Server) waitPart(w http.ResponseWriter, req *http.Request, r *run, msn, part int) bool {
	r.mu.RLock()
	cur, _ := r.position()
	r.mu.RUnlock()
	if msn > cur+2 {
		writeError(w, http.StatusBadRequest, "_HLS_msn is more than two segments ahead of the playlist")
		return false
	}
	ready := func() bool {
		if part < 0 {
			c, _ := r.position()
			return msn < c || (msn == c && r.open == nil)
		}
		return r.hasPart(msn, part)
	}
	ctx, cancel := context.WithTimeout(req.Context(), s.cfg.PlaylistWait)
	defer cancel()
	if r.wait(ctx, ready) {
		return true
	}
	if _, ended := r.endedAtTime(); ended {
		return true // the final playlist answers whatever was waited for
	}
	if req.Context().Err() == nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "the part did not come in time; retry")
	}
	return false
}

// servePlaylist sends the current rendering of a playlist, gzipped for clients that take
// it.
func (s *Server) servePlaylist(w http.ResponseWriter, req *http.Request, r *run, key renderKey, cache string) {
	if key.file == multivariantFile && !s.waitContent(w, req, r) {
		return
	}
	gz := strings.Contains(req.Header.Get("Accept-Encoding"), "gzip")
	e := r.playlist(key, gz)
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", cache)
	h.Set("Vary", "Accept-Encoding")
	body, etag := e.body, e.etag
	if gz {
		body, etag = e.gz, etag[:len(etag)-1]+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	if req.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (s *Server) serveInit(w http.ResponseWriter, req *http.Request, r *run, ref fileRef) {
	body := r.avInit
	if ref.rendition != renditionAV {
		rd := r.rendition(ref.rendition)
		if rd == nil {
			writeError(w, http.StatusNotFound, "no such rendition")
			return
		}
		body = rd.init
	}
	writeMedia(w, req, body)
}

// servePart serves a part from memory near the live edge, else from the log. The part
// after the newest (a preload hint) is held until it exists.
func (s *Server) servePart(w http.ResponseWriter, req *http.Request, r *run, ref fileRef) {
	rd := r.rendition(ref.rendition)
	if rd == nil {
		writeError(w, http.StatusNotFound, "no such rendition")
		return
	}
	r.mu.RLock()
	next := r.nextPart
	r.mu.RUnlock()
	if ref.n > next {
		writeError(w, http.StatusNotFound, "no such part")
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), s.cfg.PlaylistWait)
	defer cancel()
	if !r.wait(ctx, func() bool { return r.nextPart > ref.n }) {
		if req.Context().Err() == nil {
			writeError(w, http.StatusNotFound, "the part never came")
		}
		return
	}
	r.mu.RLock()
	p := r.part(ref.n)
	var buf []byte
	var off, size int64
	if p != nil {
		buf, off, size = p.buf[rd.idx], p.off[rd.idx], p.size[rd.idx]
	}
	r.mu.RUnlock()
	switch {
	case p == nil:
		writeError(w, http.StatusNotFound, "the part left the playlist")
	case buf != nil:
		writeMedia(w, req, buf)
	default:
		s.sendLog(w, req, r, off, size)
	}
}

// serveSegment serves a whole segment from the log: a rendition's from the DVR window, or
// both tracks' from the whole run ("from the start"), read from the archive once it left
// the disk.
func (s *Server) serveSegment(w http.ResponseWriter, req *http.Request, r *run, ref fileRef) {
	var off, size int64
	var found bool
	r.mu.RLock()
	if ref.rendition == renditionAV {
		if ref.n < len(r.hist) {
			off, size, found = r.hist[ref.n].off, int64(r.hist[ref.n].size), true
		}
	} else if rd := r.rendition(ref.rendition); rd != nil {
		if seg := r.segment(ref.n); seg != nil && seg != r.open {
			off, size, found = seg.Offset, seg.Video, true
			if rd.idx == 1 {
				off, size = seg.Offset+seg.Video, seg.Audio
			}
		}
	}
	r.mu.RUnlock()
	if !found {
		writeError(w, http.StatusNotFound, "no such segment")
		return
	}
	s.sendLog(w, req, r, off, size)
}

// sendLog sends size bytes of the run's log at off: from its chunk file with sendfile, or,
// once the chunk left the disk, from the archive.
func (s *Server) sendLog(w http.ResponseWriter, req *http.Request, r *run, off, size int64) {
	h := w.Header()
	f, at, err := r.mediaLog.Open(off, size)
	if err == nil {
		defer f.Close()
		_, err = f.Seek(at, io.SeekStart)
	}
	var body io.Reader
	switch {
	case err == nil:
		// A LimitedReader over the file is what net/http sends with sendfile.
		body = io.LimitReader(f, size)
	case errors.Is(err, os.ErrNotExist) && r.kept != nil:
		ctx, cancel := context.WithTimeout(req.Context(), time.Minute)
		defer cancel()
		rc, err := r.kept.Open(ctx, off, size)
		if err != nil {
			r.log.Warn("hls: read from the archive", "offset", off, "size", size, "err", err)
			writeError(w, http.StatusBadGateway, "the recording could not be read")
			return
		}
		defer rc.Close()
		body = rc
	default:
		writeError(w, http.StatusNotFound, "no longer available")
		return
	}
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", cacheImmutable)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		_, _ = io.Copy(w, body)
	}
}

func writeMedia(w http.ResponseWriter, req *http.Request, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", cacheImmutable)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// countingWriter counts the body bytes sent, for the server's stats.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadFrom keeps the server's sendfile path for files sent through the counter.
func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(c.ResponseWriter, r)
	c.n += n
	return n, err
}

// KindStats counts the requests and body bytes of one kind of HLS file.
type KindStats struct {
	Requests, Bytes int64
}

// Stats reports requests and bytes served since start by kind: playlist, part, segment,
// init, other (404s for unknown names).
func (s *Server) Stats() map[string]KindStats {
	out := map[string]KindStats{}
	for k := range s.stats {
		name := kindNames[k]
		st := out[name]
		st.Requests += s.stats[k].requests.Load()
		st.Bytes += s.stats[k].bytes.Load()
		out[name] = st
	}
	return out
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, msg, code)
}
