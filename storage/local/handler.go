package local

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"onair/storage"
)

// Handler serves presigned URLs: GET and HEAD (with Range, through http.ServeContent) and
// PUT. Mount it at PathPrefix without stripping the prefix (it reads the key from the full
// path). A bad or expired signature is 403, a missing object 404.
//
// Objects are served from onair's own origin, so they are sandboxed (no script of an
// uploaded HTML file runs with onair's cookies) and never content-sniffed.
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(s.serve)
}

func (s *Store) serve(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.URL.Path, s.cfg.PathPrefix)
	if !ok || storage.ValidateKey(key) != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.serveGet(w, r, key)
	case http.MethodPut:
		s.servePut(w, r, key)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (s *Store) serveGet(w http.ResponseWriter, r *http.Request, key string) {
	download, err := s.verify(http.MethodGet, key, r.URL.Query(), "dl")
	if err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	f, obj, err := s.open(r.Context(), key)
	if errors.Is(err, storage.ErrNotFound) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err != nil {
		s.log.Error("serve stored object", "key", key, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", obj.ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("Cache-Control", "private, max-age="+strconv.FormatInt(s.maxAge(r), 10))
	if obj.ETag != "" {
		h.Set("ETag", `"`+obj.ETag+`"`)
	}
	if download != "" {
		h.Set("Content-Disposition", storage.AttachmentDisposition(download))
	}
	http.ServeContent(w, r, "", obj.LastModified, f)
}

// maxAge lets caches keep a response no longer than its URL is valid.
func (s *Store) maxAge(r *http.Request) int64 {
	exp, _ := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
	return max(0, exp-s.cfg.Now().Unix())
}

func (s *Store) servePut(w http.ResponseWriter, r *http.Request, key string) {
	if r.URL.Query().Has("part") {
		s.servePart(w, r, key)
		return
	}
	contentType, err := s.verify(http.MethodPut, key, r.URL.Query(), "ct")
	if err == nil && r.Header.Get("Content-Type") != contentType {
		err = fmt.Errorf("content type %q was not signed", r.Header.Get("Content-Type"))
	}
	sig := r.URL.Query().Get("sig")
	if err == nil && !s.puts.take(sig) {
		err = errors.New("this URL was used already or not handed out by this server")
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	exp, _ := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
	if r.ContentLength > s.cfg.MaxPutSize {
		s.puts.restore(sig, exp)
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxPutSize)
	etag, err := s.putFrom(r.Context(), key, body, r.ContentLength, contentType)
	if err != nil {
		s.puts.restore(sig, exp)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		s.log.Warn("presigned put failed", "key", key, "err", err)
		http.Error(w, "upload failed", http.StatusBadRequest)
		return
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	w.WriteHeader(http.StatusOK)
}

// servePart stores a part of a multipart upload at a URL PresignPart signed: exactly the
// signed size is read, whatever the request announces.
func (s *Store) servePart(w http.ResponseWriter, r *http.Request, key string) {
	claim, err := s.verify(methodPutPart, key, r.URL.Query(), "part")
	if err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	id, n, size, ok := parsePartClaim(claim)
	if !ok {
		http.Error(w, errBadSignature.Error(), http.StatusForbidden)
		return
	}
	if r.ContentLength != size {
		http.Error(w, fmt.Sprintf("this URL takes a body of exactly %d bytes", size), http.StatusBadRequest)
		return
	}
	// A part is megabytes that a browser on a slow uplink sends for minutes: the server's
	// read timeout, made for API requests, would cut it. It may take as long as at 16 KB/s.
	rc := http.NewResponseController(w)
	until := time.Now().Add(time.Minute + time.Duration(size/(16<<10))*time.Second)
	_ = rc.SetReadDeadline(until)
	_ = rc.SetWriteDeadline(until)
	body := http.MaxBytesReader(w, r.Body, size)
	part, err := s.uploadPart(r.Context(), key, id, n, body, size)
	if errors.Is(err, storage.ErrNotFound) {
		http.Error(w, "no such upload", http.StatusNotFound)
		return
	}
	if err != nil {
		s.log.Warn("presigned part put failed", "key", key, "part", n, "err", err)
		http.Error(w, "upload failed", http.StatusBadRequest)
		return
	}
	w.Header().Set("ETag", `"`+part.ETag+`"`)
	w.WriteHeader(http.StatusOK)
}
