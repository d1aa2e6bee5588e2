// Package rtmp accepts publishers over RTMP (OBS, ffmpeg, hardware encoders) and feeds
// their audio and video into the media hub.
package rtmp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	gortmp "github.com/yutopp/go-rtmp"

	"onair/media"
)

// Config configures a Server.
type Config struct {
	Logger   *slog.Logger
	Hub      *media.Hub
	Resolver media.KeyResolver
	// App is the application name in the publish URL: rtmp://host/<App>/<stream key>.
	App string
	// SetupTimeout bounds the time from accepting a connection to its publish command.
	SetupTimeout time.Duration
	// ReadTimeout drops a connection that sends no bytes for this long.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write to a client.
	WriteTimeout time.Duration
	// MaxConnections bounds concurrent connections; further ones are closed at once.
	MaxConnections int
	// MaxMessageSize bounds one RTMP message (a video frame, typically).
	MaxMessageSize int
	// ReadInterval, when positive, paces publishing connections' reads while at least
	// pacedFrom connections publish: at most one read per interval, at the multiples of
	// the interval on the wall clock. ffmpeg and OBS send each frame as it is due, so
	// reading at once means a read, a failed read and a thread wake-up per frame; paced,
	// a read takes every frame that arrived meanwhile, and the publishers' reads fall on
	// the same instants, so that one wake-up of the runtime serves them all. It adds up
	// to the interval to the latency.
	ReadInterval time.Duration
}

// Refusal reasons, as counted by RefusedByReason.
const (
	RefusedUnknownKey     = "unknown_key"
	RefusedBusy           = "busy"
	RefusedBadApp         = "bad_app"
	RefusedTooMany        = "too_many_connections"
	RefusedProtocol       = "protocol_error"
	RefusedTimeout        = "timeout"
	RefusedUnsupported    = "unsupported"
	RefusedResolverFailed = "resolver_error"
)

// pacedFrom is how many connections must be publishing for ReadInterval to apply. With
// fewer there is little wake-up to share, and the timer wake-ups cost more than they save
// (onair's CPU paced against unpaced, with `ffmpeg -re -c copy` publishers of 720p30 at
// 2.6 Mbit/s: 2x with 1 publisher, 1.1x with 4, 0.72x with 10, 0.69x with 20).
const pacedFrom = 8

// Server is the RTMP ingest.
type Server struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	refused map[string]int64

	active     atomic.Int64
	publishing atomic.Int64 // connections past their publish command, open
}

// New checks cfg and returns a server; Run starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Hub == nil || cfg.Resolver == nil {
		return nil, errors.New("rtmp: Hub and Resolver are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.App == "" {
		cfg.App = "live"
	}
	if cfg.SetupTimeout <= 0 {
		cfg.SetupTimeout = 10 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = 1000
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 8 << 20
	}
	return &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "rtmp"),
		conns:   map[net.Conn]struct{}{},
		refused: map[string]int64{},
	}, nil
}

// Run serves connections from ln until ctx ends, then closes every connection.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := gortmp.NewServer(&gortmp.ServerConfig{OnConnect: s.onConnect})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(&limitListener{Listener: ln, s: s}) }()
	s.log.Info("rtmp listening", "addr", ln.Addr().String())

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("rtmp serve on %s: %w", ln.Addr(), err)
	}
	_ = srv.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	<-errc
	return nil
}

// Connections is the number of open RTMP connections.
func (s *Server) Connections() int64 { return s.active.Load() }

// RefusedByReason counts refused or dropped connections by reason since start.
func (s *Server) RefusedByReason() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.refused))
	for k, v := range s.refused {
		out[k] = v
	}
	return out
}

func (s *Server) refuse(reason string) {
	s.mu.Lock()
	s.refused[reason]++
	s.mu.Unlock()
}

func (s *Server) track(c net.Conn, open bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if open {
		s.conns[c] = struct{}{}
		s.active.Add(1)
		return
	}
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.active.Add(-1)
	}
}

func (s *Server) onConnect(nc net.Conn) (io.ReadWriteCloser, *gortmp.ConnConfig) {
	c := &conn{
		Conn:         nc,
		server:       s,
		readTimeout:  s.cfg.ReadTimeout,
		writeTimeout: s.cfg.WriteTimeout,
	}
	c.setupDeadline.Store(time.Now().Add(s.cfg.SetupTimeout).UnixNano())
	c.guard = newChunkGuard(bufio.NewReaderSize(c, 64<<10), guardLimits{
		MaxMessageSize:  uint32(s.cfg.MaxMessageSize),
		MaxChunkSize:    1 << 20,
		MaxChunkStreams: 64,
		MaxPending:      2 * int64(s.cfg.MaxMessageSize),
	})

	h := &handler{server: s, conn: c, log: s.log.With("remote", nc.RemoteAddr().String())}
	c.handler = h

	discard := logrus.New()
	discard.Out = io.Discard // go-rtmp logs commands verbatim, stream keys included
	rwc := struct {
		io.Reader
		io.Writer
		io.Closer
	}{&guardedReader{c: c}, c, c}
	return rwc, &gortmp.ConnConfig{
		Handler: h,
		ControlState: gortmp.StreamControlStateConfig{
			MaxChunkSize:      1 << 20,
			MaxChunkStreams:   64,
			MaxMessageSize:    uint32(s.cfg.MaxMessageSize),
			MaxMessageStreams: 8,
		},
		ReaderBufferSize: 16 << 10,
		Logger:           discard,
	}
}

// limitListener refuses connections beyond MaxConnections by closing them right away.
type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.s.active.Load() >= int64(l.s.cfg.MaxConnections) {
			l.s.refuse(RefusedTooMany)
			l.s.log.Warn("rtmp connection refused: too many connections", "remote", c.RemoteAddr().String(), "limit", l.s.cfg.MaxConnections)
			_ = c.Close()
			continue
		}
		l.s.track(c, true)
		return c, nil
	}
}

// conn applies deadlines and the chunk guard to one client connection. go-rtmp reads through
// it; the guard fails the read on protocol abuse, which makes go-rtmp close the connection.
type conn struct {
	net.Conn
	server       *Server
	handler      *handler
	guard        *chunkGuard
	readTimeout  time.Duration
	writeTimeout time.Duration
	// setupDeadline is when a connection that has not started publishing is dropped; zero
	// once it publishes.
	setupDeadline atomic.Int64
	closeOnce     sync.Once
	// Only Read uses these: when a paced read last started, and whether the last read
	// filled its buffer.
	lastRead time.Time
	filled   bool

	mu         sync.Mutex
	publishing bool // counted in server.publishing
	closed     bool
}

func (c *conn) Read(p []byte) (int, error) {
	if iv := c.server.cfg.ReadInterval; iv > 0 && c.setupDeadline.Load() == 0 && c.server.publishing.Load() >= pacedFrom {
		now := time.Now()
		if d := c.paceWait(now, iv); d > 0 {
			time.Sleep(d)
			now = time.Now()
		}
		c.lastRead = now
	}
	dl := time.Now().Add(c.readTimeout)
	if sd := c.setupDeadline.Load(); sd != 0 && sd < dl.UnixNano() {
		dl = time.Unix(0, sd)
	}
	if err := c.Conn.SetReadDeadline(dl); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.filled = n == len(p)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.handler.fail(RefusedTimeout, fmt.Errorf("read: no data for %s or setup not finished in time", c.readTimeout))
		}
	}
	return n, err
}

// startPublishing ends the setup deadline and counts the connection as publishing.
func (c *conn) startPublishing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setupDeadline.Store(0)
	if !c.closed && !c.publishing {
		c.publishing = true
		c.server.publishing.Add(1)
	}
}

// paceWait is how long a paced read starting at now waits: until the next multiple of iv
// on the wall clock when the previous read started less than iv ago (see
// Config.ReadInterval), but not at all after a read that filled its buffer, since more may
// be waiting: a publisher sending faster than a buffer per interval is not held back.
func (c *conn) paceWait(now time.Time, iv time.Duration) time.Duration {
	if c.filled || now.Sub(c.lastRead) >= iv {
		return 0
	}
	return now.Truncate(iv).Add(iv).Sub(now)
}

// guardedReader is what go-rtmp reads: the connection's bytes after the chunk guard.
type guardedReader struct{ c *conn }

func (g *guardedReader) Read(p []byte) (int, error) {
	n, err := g.c.guard.Read(p)
	if err != nil && g.c.guard.err != nil {
		g.c.handler.fail(RefusedProtocol, err)
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.server.track(c.Conn, false)
		c.mu.Lock()
		c.closed = true
		if c.publishing {
			c.server.publishing.Add(-1)
		}
		c.mu.Unlock()
	})
	return err
}
