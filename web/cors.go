package web

import "net/http"

// storageCORS lets players on other sites (an embed, a site with its own hls.js) fetch
// replays from the local storage backend, as they can from S3: the URLs are presigned,
// so no cookie or credential is involved and any origin may read them. Range must be
// allowed and Content-Range exposed, or hls.js cannot read byte-range fragments.
func storageCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.Method {
		case http.MethodOptions:
			if r.Header.Get("Origin") == "" || r.Header.Get("Access-Control-Request-Method") == "" {
				h.Set("Allow", "GET, HEAD, PUT, OPTIONS")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Allow-Methods", "GET, HEAD")
			h.Set("Access-Control-Allow-Headers", "Range, If-Range, If-None-Match, If-Modified-Since")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		case http.MethodGet, http.MethodHead:
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges, ETag")
		}
		next.ServeHTTP(w, r)
	})
}
