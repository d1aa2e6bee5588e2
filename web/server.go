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
	"time"

	"onair/chat"
	"onair/media"
	"onair/media/hls"
	"onair/rooms"
	"onair/rooms/audit"
	"onair/rooms/oidc"
	"onair/rooms/webhook"
)

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
	// Hub lists the live streams.
	Hub *media.Hub
	// Rooms serves accounts, rooms and broadcasts; nil without MongoDB (the API answers 503).
	Rooms *rooms.Service
	// Chat serves the rooms' chat; nil without MongoDB.
	Chat *chat.Hub
	// Audit lists the audit trail to admins (admin.go); Webhooks manages rooms' webhooks
	// and their delivery log (webhooks.go). Both nil without MongoDB.
	Audit    *audit.Log
	Webhooks *webhook.Dispatcher
	// OIDC, when set, offers sign-in with that OpenID Connect provider next to local
	// accounts (oidc.go); OIDCName is the provider's name on the login page.
	OIDC     *oidc.Provider
	OIDCName string
	// Recordings presigns recording URLs; Storage, when set, is the local backend's
	// handler, mounted at /storage/.
	Recordings Recordings
	Storage    http.Handler

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
	chatRooms chatRooms
	proxy     *hlsProxy
	audience  *hls.Audience // viewers of the streams served here, local or proxied
	gate      streamGate    // what each stream's media requires (playback.go)
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
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("web: public URL %q: want scheme://host", cfg.PublicURL)
		}
		s.publicURL = u
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
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("/live/{name}/{file}", s.liveHLS)
	// A private room's recordings, under its media path (replay.go, playback.go).
	s.mux.HandleFunc("GET /vod/{ref}/{id}/index.m3u8", s.replayPlaylist)
	s.mux.HandleFunc("GET /vod/{ref}/{id}/media.mp4", s.replayMedia)
	s.mux.HandleFunc("GET /vod/{ref}/{id}/download", s.download)
	s.pageRoutes()
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Storage != nil {
		s.mux.Handle("/storage/", s.cfg.Storage)
	}
	s.apiRoutes()
}

// apiRoutes mounts /api/v1. Without MongoDB every API route answers 503.
func (s *Server) apiRoutes() {
	if s.cfg.Rooms == nil || s.cfg.Chat == nil {
		s.mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
			writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "", "accounts, rooms and chat need MongoDB (set mongo.uri)")
		})
		return
	}
	api := http.NewServeMux()
	h := func(pattern string, f http.HandlerFunc) { api.HandleFunc(pattern, f) }
	h("POST /api/v1/auth/signup", s.signUp)
	h("POST /api/v1/auth/login", s.logIn)
	h("POST /api/v1/auth/logout", s.logOut)
	h("GET /api/v1/auth/me", s.whoAmI)
	h("GET "+oidcCookiePath+"login", s.oidcLogin)
	h("GET "+oidcCallbackPath, s.oidcCallback)

	h("GET /api/v1/rooms", s.listRooms)
	h("POST /api/v1/rooms", s.createRoom)
	h("GET /api/v1/rooms/{slug}", s.getRoom)
	h("PATCH /api/v1/rooms/{slug}", s.updateRoom)
	h("DELETE /api/v1/rooms/{slug}", s.deleteRoom)
	h("POST /api/v1/rooms/{slug}/stream-key", s.rotateKey)
	h("POST /api/v1/rooms/{slug}/moderators", s.addModerator)
	h("DELETE /api/v1/rooms/{slug}/moderators/{handle}", s.removeModerator)
	h("GET /api/v1/rooms/{slug}/viewers", s.listInvited)
	h("POST /api/v1/rooms/{slug}/viewers", s.inviteViewer)
	h("DELETE /api/v1/rooms/{slug}/viewers/{handle}", s.revokeViewer)
	h("POST /api/v1/rooms/{slug}/playback", s.playbackSession)
	h("POST /api/v1/rooms/{slug}/playback-tokens", s.urlToken)

	h("GET /api/v1/rooms/{slug}/health", s.roomHealth)
	h("GET /api/v1/rooms/{slug}/broadcasts", s.listBroadcasts)
	h("GET /api/v1/broadcasts/{id}", s.getBroadcast)
	h("DELETE /api/v1/broadcasts/{id}", s.deleteBroadcast)
	h("GET /api/v1/broadcasts/{id}/replay.m3u8", s.replayPlaylist)
	h("GET /api/v1/broadcasts/{id}/download", s.download)

	h("GET /api/v1/rooms/{slug}/chat", s.chatSocket)
	h("GET /api/v1/rooms/{slug}/chat/history", s.chatHistory)
	h("DELETE /api/v1/rooms/{slug}/chat/messages/{id}", s.deleteMessage)
	h("POST /api/v1/rooms/{slug}/chat/timeouts", s.timeoutUser)
	h("POST /api/v1/rooms/{slug}/chat/bans", s.banUser)
	h("DELETE /api/v1/rooms/{slug}/chat/bans/{handle}", s.unbanUser)
	h("PUT /api/v1/rooms/{slug}/chat/slow-mode", s.slowMode)
	h("GET /api/v1/rooms/{slug}/chat/moderation", s.moderationLog)

	h("GET /api/v1/admin/audit", s.listAudit)
	h("GET /api/v1/admin/webhooks/deliveries", s.adminDeliveries)
	h("GET /api/v1/rooms/{slug}/webhooks", s.listWebhooks)
	h("POST /api/v1/rooms/{slug}/webhooks", s.createWebhook)
	h("DELETE /api/v1/rooms/{slug}/webhooks/{id}", s.deleteWebhook)
	h("GET /api/v1/rooms/{slug}/webhooks/{id}/deliveries", s.webhookDeliveries)
	api.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		writeAPIError(w, http.StatusNotFound, "not_found", "", "no such API route")
	})
	s.mux.Handle("/api/", s.withClientIP(s.withUser(s.guardUnsafe(api))))
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
