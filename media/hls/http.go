package hls

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"
)

// ServeHTTP serves /live/{name}/{file}; the router must set the two path values.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := classify(r.PathValue("file"))
	cw := &countingWriter{ResponseWriter: w}
	s.serve(cw, r, kind)
	st := &s.stats[kind]
	st.requests.Add(1)
	st.bytes.Add(cw.n)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, kind fileKind) {
	h := w.Header()
	// Players on other origins (an embed, a CDN-hosted page) must be able to read the stream.
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
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

	file := r.PathValue("file")
	sess := s.lookup(r.PathValue("name"))
	if kind == kindUnknown || sess == nil {
		writeError(w, http.StatusNotFound, "stream not found")
		return
	}
	q := r.URL.Query()
	sid := q.Get("s")
	if sid != "" && sid != sess.id {
		writeError(w, http.StatusNotFound, "this run of the stream has ended; reload index.m3u8")
		return
	}
	pinned := sid != ""
	blocking := q.Has("_HLS_msn")

	if _, ended := sess.endedAt(); ended {
		s.serveEnded(w, r, sess, file, kind, blocking, pinned)
		return
	}
	switch kind {
	case kindMultivariant:
		// Pin the media playlists to this run, so cached answers never cross runs.
		r = r.Clone(r.Context())
		r.URL.RawQuery = "s=" + sess.id
		s.serveWaiting(w, r, sess, file, kind, false, true)
	case kindMediaPlaylist, kindPart:
		s.serveWaiting(w, r, sess, file, kind, blocking, pinned)
	default:
		serveMuxer(w, r, sess, kind)
	}
}

// serveWaiting serves what the muxer may hold back until the stream has progressed, and
// stops waiting when the stream ends, the client leaves or PlaylistWait passes.
func (s *Server) serveWaiting(w http.ResponseWriter, r *http.Request, sess *session, file string, kind fileKind, blocking, pinned bool) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PlaylistWait)
	defer cancel()
	shared, produce := sess.responses.get(file+"?"+r.URL.RawQuery, time.Now())
	if produce {
		// Shared by every viewer asking meanwhile: not bound to this one's request.
		go func() {
			sess.muxer.Handle(shared.buf, r)
			sess.responses.done(shared, shareFor(kind, blocking))
		}()
	}
	buf := shared.buf
	select {
	case <-shared.ready:
	case <-sess.ended:
		s.serveEnded(w, r, sess, file, kind, blocking, pinned)
		return
	case <-ctx.Done():
		if r.Context().Err() == nil {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "stream is starting; retry")
		}
		return
	}
	if buf.code == 0 {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	if buf.code != http.StatusOK {
		writeError(w, buf.code, http.StatusText(buf.code))
		return
	}
	h := w.Header()
	h.Set("Content-Type", buf.header.Get("Content-Type"))
	h.Set("Content-Length", strconv.Itoa(buf.body.Len()))
	h.Set("Cache-Control", cacheControl(kind, blocking, pinned))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.body.Bytes())
}

func (s *Server) serveEnded(w http.ResponseWriter, r *http.Request, sess *session, file string, kind fileKind, blocking, pinned bool) {
	switch kind {
	case kindMultivariant, kindMediaPlaylist:
		body, ok := sess.final[file]
		if !ok {
			writeError(w, http.StatusNotFound, "stream not found")
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/vnd.apple.mpegurl")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("Cache-Control", cacheControl(kind, blocking, pinned))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	case kindInit, kindSegment:
		if !sess.finalFiles[file] {
			writeError(w, http.StatusNotFound, "not found")
			return
		}
		serveMuxer(w, r, sess, kind)
	default:
		writeError(w, http.StatusNotFound, "the stream has ended")
	}
}

// serveMuxer streams what the muxer answers at once (init files and segments).
func serveMuxer(w http.ResponseWriter, r *http.Request, sess *session, kind fileKind) {
	if kind == kindSegment {
		if f, ok := sess.openFinishedSegment(r.PathValue("file")); ok {
			serveSegmentFile(w, r, f, r.PathValue("file"))
			return
		}
	}
	cw := &cacheWriter{ResponseWriter: w, cache: cacheControl(kind, false, true)}
	sess.muxer.Handle(cw, r)
	if !cw.wrote {
		writeError(w, http.StatusNotFound, "not found")
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

var kindNames = [...]string{kindUnknown: "other", kindMultivariant: "playlist", kindMediaPlaylist: "playlist",
	kindInit: "init", kindPart: "part", kindSegment: "segment"}

// cacheWriter replaces the muxer's cache policy with ours.
type cacheWriter struct {
	http.ResponseWriter
	cache string
	wrote bool
}

func (c *cacheWriter) WriteHeader(code int) {
	c.wrote = true
	if code == http.StatusOK {
		c.Header().Set("Cache-Control", c.cache)
	} else {
		c.Header().Set("Cache-Control", "no-store")
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *cacheWriter) Write(p []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(p)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, msg, code)
}
