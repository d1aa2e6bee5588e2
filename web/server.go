// Package web is onair's HTTP side: the pages, the HLS routes and the API.
package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"time"

	"onair/media"
)

// Config configures a Server.
type Config struct {
	Logger *slog.Logger
	// HLS serves /live/{name}/{file}.
	HLS http.Handler
	// Hub lists the live streams.
	Hub *media.Hub

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// Server is onair's HTTP server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	pages  *template.Template
	assets http.Handler
}

// New builds the routes.
func New(cfg Config) (*Server, error) {
	if cfg.HLS == nil || cfg.Hub == nil {
		return nil, errors.New("web: HLS and Hub are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pages, err := template.ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse templates: %w", err)
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "web"),
		mux:    http.NewServeMux(),
		pages:  pages,
		assets: http.StripPrefix("/assets/", http.FileServerFS(assetFS())),
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.Handle("/live/{name}/{file}", s.cfg.HLS)
	s.mux.HandleFunc("GET /watch/{name}", s.watch)
	s.mux.HandleFunc("GET /assets/", s.asset)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /{$}", s.index)
}

// Handler is the server's root handler, with the headers every response gets.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		s.mux.ServeHTTP(w, r)
	})
}

// Run serves ln until ctx ends, then shuts down gracefully within a few seconds.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("http listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("http serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	return nil
}

// pageHeaders lock pages down: only onair's own scripts, styles and media run.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "+
		"img-src 'self' data:; media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
}

var streamNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !streamNameRE.MatchString(name) {
		http.Error(w, "no such stream", http.StatusNotFound)
		return
	}
	s.render(w, "watch.html", map[string]any{"Title": name, "Stream": name})
}

type liveEntry struct {
	Name   string
	Uptime string
}

func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	var live []liveEntry
	for _, st := range s.cfg.Hub.Streams() {
		live = append(live, liveEntry{Name: st.Name(), Uptime: time.Since(st.StartedAt()).Round(time.Second).String()})
	}
	s.render(w, "index.html", map[string]any{"Title": "Live now", "Live": live})
}

func (s *Server) render(w http.ResponseWriter, page string, data any) {
	pageHeaders(w)
	if err := s.pages.ExecuteTemplate(w, page, data); err != nil {
		s.log.Error("render page", "page", page, "err", err)
	}
}

func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	if _, err := fs.Stat(assetFS(), r.URL.Path[len("/assets/"):]); err != nil {
		http.Error(w, "not found (was the UI built? run make ui)", http.StatusNotFound)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	s.assets.ServeHTTP(w, r)
}
