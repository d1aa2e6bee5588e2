package web

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The bundle built by `make ui`. dist/README.md is committed so that the package compiles
// on a fresh clone before the bundle is built.
//
//go:embed all:ui/dist
var embedded embed.FS

//go:embed templates
var templateFS embed.FS

func assetFS() fs.FS {
	sub, err := fs.Sub(embedded, "ui/dist")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return sub
}

// serveAsset serves a built file, pre-compressed with brotli or gzip when the browser
// accepts it. Content-hashed files never change, so caches keep them for a year.
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := s.site.assets[r.PathValue("file")]
	if !ok {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "not found (was the UI built? run make ui)", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	if a.immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	body, enc := a.identity, ""
	if a.gzip != nil || a.brotli != nil {
		h.Set("Vary", "Accept-Encoding")
		switch accepted := acceptedEncodings(r.Header.Get("Accept-Encoding")); {
		case a.brotli != nil && accepted["br"]:
			body, enc = a.brotli, "br"
		case a.gzip != nil && accepted["gzip"]:
			body, enc = a.gzip, "gzip"
		}
	}
	etag := a.etag
	if enc != "" {
		h.Set("Content-Encoding", enc)
		etag += "-" + enc
	}
	h.Set("ETag", `"`+etag+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptedEncodings parses Accept-Encoding into the codings with a non-zero quality.
func acceptedEncodings(header string) map[string]bool {
	out := map[string]bool{}
	star, starSet := false, false
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		ok := true
		for _, p := range strings.Split(params, ";") {
			k, v, found := strings.Cut(strings.TrimSpace(p), "=")
			if found && strings.EqualFold(strings.TrimSpace(k), "q") {
				if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && q <= 0 {
					ok = false
				}
			}
		}
		if name == "*" {
			star, starSet = ok, true
			continue
		}
		out[name] = ok
	}
	if starSet {
		for _, n := range []string{"br", "gzip"} {
			if _, named := out[n]; !named {
				out[n] = star
			}
		}
	}
	return out
}
