// Package web is onair's HTTP side: the pages, the HLS routes and the API.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"onair/chat"
	"onair/media"
	"onair/media/hls"
	"onair/rooms"
	"onair/rooms/audit"
	"onair/rooms/oidc"
	"onair/rooms/uploads"
	"onair/rooms/webhook"
)

// LiveStreams is what web reads of the media hub: the streams live on this node.
type LiveStreams interface {
	// Streams lists them.
	Streams() []*media.Stream
	// Stream is the one called name, nil when none is live.
	Stream(name string) *media.Stream
	// LastRefusal is why a publish of the stream called name was last refused.
	LastRefusal(name string) (media.Refusal, bool)
	// Renditions lists the further renditions of the stream called name live here.
	Renditions(name string) []*media.Stream
}

// Config configures a Server.
type Config struct {
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// HLS serves /live/{name}/{file} for the streams of this node.
	HLS LocalHLS
	// OriginNodes, when set, lets this node serve streams live on other nodes by fetching
	// their HLS from the node a stream is live on (its origin node); ProxyCacheBytes bounds the cache of their parts and segments.
	OriginNodes     OriginNodes
	ProxyCacheBytes int64
	// Hub lists this node's live streams (a *media.Hub).
	Hub LiveStreams
	// Rooms serves accounts, rooms and broadcasts; nil without MongoDB (the API answers 503).
	Rooms *rooms.Service
	// Chat serves the rooms' chat; nil without MongoDB.
	Chat *chat.Hub
	// Audit lists the audit trail to admins (admin.go); Webhooks manages rooms' webhooks
	// and their delivery log (webhooks.go). Both nil without MongoDB.
	Audit    *audit.Log
	Webhooks *webhook.Dispatcher
	// Cluster lists the cluster's nodes for the admins' server health (nil: none shown).
	Cluster ClusterNodes
	// OIDC, when set, offers sign-in with that OpenID Connect provider next to local
	// accounts (oidc.go); OIDCName is the provider's name on the login page.
	OIDC     *oidc.Provider
	OIDCName string
	// Recordings presigns recording URLs; Storage, when set, is the local backend's
	// handler, mounted at /storage/.
	Recordings Recordings
	Storage    http.Handler
	// LiveClips cuts clips of the streams live on this node, and ClipObjects reads
	// recordings and stores clips (clips.go); without ClipObjects there are no clips.
	LiveClips   LiveCutter
	ClipObjects ClipObjects
	// Uploads makes past broadcasts of uploaded videos (uploads.go); nil without MongoDB.
	Uploads *uploads.Service
	// FromStart says that a recorder keeps the live runs of the rooms that record, so
	// that their whole broadcast so far plays "from the start" (start.m3u8).
	FromStart bool

	// PublicURL is how browsers reach onair (e.g. https://live.example.com), when it is not
	// the request's own host: it sets the cookie's Secure flag and the CSRF origin.
	PublicURL string
	// RTMPURL is shown to streamers; when empty it is built from the request's host name,
	// RTMPPort and RTMPApp.
	RTMPURL  string
	RTMPPort string
	RTMPApp  string
	// RTMPSURL, or else RTMPSPort, offers streamers RTMP over TLS besides RTMPURL (built
	// like it); both empty: no RTMPS.
	RTMPSURL  string
	RTMPSPort string
	// MaxLadderKbps caps what OBS's multitrack video sends to a room that sets no cap of
	// its own (kbit/s, every track and audio together; 0: 10000).
	MaxLadderKbps int
	// Ready reports whether this node can serve: its dependencies answer (for /readyz).
	Ready func(context.Context) error

	// TrustProxy believes X-Forwarded-For and X-Forwarded-Proto (onair behind a proxy).
	TrustProxy bool
	// HSTS is the max-age of the Strict-Transport-Security header on responses to
	// browsers that came over HTTPS (see secure); 0 means a year, a negative value none.
	HSTS time.Duration
	// AllowedPageOrigins are the origins (scheme://host) of other sites whose pages may
	// make state-changing requests and open chat sockets, besides onair's own (CSRF).
	AllowedPageOrigins []string
	// EmbedFrameAncestors are the sources (CSP frame-ancestors) that may put the embed
	// pages (/embed/...) in a frame; empty: any site. Other pages refuse framing.
	EmbedFrameAncestors []string

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// Server is onair's HTTP server.
type Server struct {
	cfg       Config
	log       *slog.Logger
	mux       *http.ServeMux
	site      *site // pages and their assets (pages.go)
	publicURL *url.URL
	hsts      string // the Strict-Transport-Security header, "" for none
	// frameAncestors is the CSP frame-ancestors of the embed pages (embed.go).
	frameAncestors string
	chatRooms      chatRooms
	proxy          *hlsProxy
	audience       *hls.Audience // viewers of the streams served here, local or proxied
	gate           streamGate    // what each stream's media requires (playback.go)
	// rewrites recycles the buffers of playlists held and rewritten with a URL token
	// (*[]byte, mediaWriter): an external player of a private room makes one of each with
	// every playlist request.
	rewrites sync.Pool
	// clipping bounds the clips being cut at once (clips.go): each copies up to a minute
	// of video through a temporary file.
	clipping chan struct{}

	// table is every documented route (routes.go); api serves those under /api/v1 and
	// served lists every pattern registered through a router, for the coverage test.
	table    []route
	api      *router
	served   []string
	openapi  []byte // the OpenAPI document (openapi.go)
	asyncapi []byte // the chat socket's AsyncAPI document (asyncapi.go)
}

// New builds the routes.
func New(cfg Config) (*Server, error) {
	if cfg.HLS == nil || cfg.Hub == nil {
		return nil, errors.New("web: HLS and Hub are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	site, err := newSite(assetFS())
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "web"),
		mux:       http.NewServeMux(),
		site:      site,
		chatRooms: chatRooms{rooms: map[string]chat.Room{}},
		audience:  hls.NewAudience(),
		clipping:  make(chan struct{}, maxConcurrentClips),
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("web: public URL %q: want scheme://host", cfg.PublicURL)
		}
		s.publicURL = u
	}
	if s.frameAncestors, err = FrameAncestors(cfg.EmbedFrameAncestors); err != nil {
		return nil, fmt.Errorf("web: embed frame ancestors: %w", err)
	}
	if cfg.OriginNodes != nil {
		if cfg.ProxyCacheBytes <= 0 {
			cfg.ProxyCacheBytes = 64 << 20
		}
		s.proxy = newHLSProxy(cfg.OriginNodes, cfg.ProxyCacheBytes)
	}
	if s.cfg.RTMPApp == "" {
		s.cfg.RTMPApp = "live"
	}
	if s.cfg.RTMPPort == "" {
		s.cfg.RTMPPort = "1935"
	}
	switch {
	case cfg.HSTS == 0:
		s.hsts = "max-age=31536000"
	case cfg.HSTS > 0:
		s.hsts = "max-age=" + strconv.FormatInt(int64(cfg.HSTS/time.Second), 10)
	}
	s.routes()
	if s.openapi, err = s.openAPIDocument(); err != nil {
		return nil, err
	}
	if s.asyncapi, err = asyncAPIDocument(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) routes() {
	top := &router{mux: s.mux}
	for _, rt := range s.mediaTable() {
		top.handle(rt.pattern(), rt.h)
		s.table = append(s.table, rt)
	}
	s.pageRoutes()
	s.apiRoutes()
	s.served = append(top.patterns, s.api.patterns...)
}

// apiRoutes mounts /api/v1 from the route table (routes.go). Without MongoDB every API
// route answers 503.
func (s *Server) apiRoutes() {
	s.api = newRouter()
	if s.cfg.Rooms == nil || s.cfg.Chat == nil {
		s.api.fallback(func(w http.ResponseWriter, _ *http.Request) {
			writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "", "accounts, rooms and chat need MongoDB (set mongo.uri)")
		})
		s.mux.Handle("/api/", s.api.mux)
		return
	}
	for _, rt := range s.apiTable() {
		s.api.handle(rt.pattern(), s.guard(rt))
		s.table = append(s.table, rt)
	}
	s.api.fallback(func(w http.ResponseWriter, _ *http.Request) {
		writeAPIError(w, http.StatusNotFound, "not_found", "", "no such API route")
	})
	s.mux.Handle("/api/", s.withClientIP(s.withAPIUser(s.guardUnsafe(s.api.mux))))
}

// Handler is the server's root handler, with the headers every response gets.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.hsts != "" && s.secure(r) {
			h.Set("Strict-Transport-Security", s.hsts)
		}
		s.mux.ServeHTTP(w, r)
	})
}

// Run serves ln until ctx ends, then shuts down gracefully within a few seconds. A
// crypto/tls listener makes it HTTPS (HTTP/2 too, when its config offers "h2").
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	return Serve(ctx, s.log, "http", ln, s.Handler(), Limits{
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
	})
}

// Limits bound what one client of an HTTP listener may take.
type Limits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// Serve serves h on ln within limits until ctx ends, then shuts down gracefully within a
// few seconds. Every listener of onair that speaks HTTP goes through here, so that none
// lacks the timeouts; name tells them apart in the logs.
func Serve(ctx context.Context, log *slog.Logger, name string, ln net.Listener, h http.Handler, l Limits) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info(name+" listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("%s serve on %s: %w", name, ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	return nil
}

// readyz answers 200 while the node can serve, 503 with the reason otherwise, so that a
// load balancer or Kubernetes routes around it.
//
// /readyz is public: it names the part that is down, never the error itself, which can
// carry the database's address or credentials' user; the reason is in onair's logs.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(r.Context()); err != nil {
			msg := "not ready"
			var u *Unready
			if errors.As(err, &u) {
				msg += ": " + u.Part
			}
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

// Unready is an error of Config.Ready naming the part of onair that is not ready
// ("mongodb", "object storage", "listeners"), the only part /readyz shows.
type Unready struct {
	Part string
	Err  error
}

func (u *Unready) Error() string { return u.Part + ": " + u.Err.Error() }

func (u *Unready) Unwrap() error { return u.Err }
