// Package rtmp accepts publishers over RTMP (OBS, ffmpeg, hardware encoders) and feeds
// their audio and video into the media hub.
package rtmp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
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
	// SetupTimeout bounds the time from accepting a connection to its publish command
	// being accepted: reads and writes fail at that deadline, however the client trickles
	// bytes or leaves responses unread.
	SetupTimeout time.Duration
	// ReadTimeout drops a connection that sends no bytes for this long.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write to a client.
	WriteTimeout time.Duration
	// MaxConnections bounds concurrent connections. When it is reached, a connection from
	// an address that holds at least two fewer connections than the busiest address with
	// connections that have not published yet takes the place of the oldest of those
	// (RefusedEvicted); any other is closed at once (RefusedTooMany). So one address, or a
	// few, cannot lock the others out by holding idle connections.
	MaxConnections int
	// MaxConnectionsPerAddress bounds concurrent connections from one client address (an
	// IPv6 /64, which one subscriber usually has); further ones are closed at once
	// (RefusedTooManyFromAddress).
	MaxConnectionsPerAddress int
	// MaxSetupConnections bounds concurrent connections whose publish command has not
	// been accepted yet, as MaxConnections bounds all (RefusedTooManyInSetup, or an
	// eviction): each may hold ConnMemory(SetupMaxBuffered), and anyone who can open TCP
	// connections from many addresses gets that far.
	MaxSetupConnections int
	// MaxMessageSize bounds one RTMP message (a video frame, typically) once the publish
	// command has been accepted; before, SetupMaxMessageSize does.
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
	RefusedUnknownKey         = "unknown_key"
	RefusedBusy               = "busy"
	RefusedBadApp             = "bad_app"
	RefusedTooMany            = "too_many_connections"
	RefusedTooManyFromAddress = "too_many_from_address"
	RefusedTooManyInSetup     = "too_many_in_setup"
	RefusedEvicted            = "evicted" // not yet publishing, closed to let another address in
	RefusedProtocol           = "protocol_error"
	RefusedTimeout            = "timeout"
	RefusedUnsupported        = "unsupported"
	RefusedResolverFailed     = "resolver_error"
	RefusedBadRendition       = "bad_rendition"
	RefusedNoMain             = "no_main_rendition"
)

// What a connection may make the server buffer before its publish command is accepted.
// Until then a client needs only small messages (connect, releaseStream, FCPublish,
// createStream, publish, Set Chunk Size, Window Acknowledgement Size: under 1 KiB each
// from OBS, ffmpeg and GStreamer), and anyone who can open a TCP connection gets this
// far, so it is a small fraction of what a publisher with a valid stream key may buffer.
const (
	// SetupMaxMessageSize bounds one message before publish.
	SetupMaxMessageSize = 32 << 10
	// SetupMaxBuffered bounds the message bytes buffered for a connection before publish,
	// across all its chunk streams (guardLimits.MaxPending).
	SetupMaxBuffered = 64 << 10
)

// bufferedMessages is how many messages of Config.MaxMessageSize a publishing connection
// may have buffered across its chunk streams: the video frame being received, and room
// for the rest (audio, metadata, and the buffers go-rtmp keeps for every chunk stream).
const bufferedMessages = 2

const (
	maxChunkSize      = 1 << 20
	maxChunkStreams   = 64
	maxMessageStreams = 8
)

// What a connection costs beyond the message bytes its guard counts (ConnMemory).
const (
	// Buffers every connection has from its accept on.
	guardReadBuffer   = 64 << 10 // under the guard, which reads headers a few bytes at a time
	goRTMPReadBuffer  = 16 << 10 // ConnConfig.ReaderBufferSize
	goRTMPWriteBuffer = 4 << 10  // ConnConfig.WriterBufferSize
	goRTMPCopyBuffer  = 64 << 10 // go-rtmp's ChunkStreamer.cacheBuffer, fixed
	connStacks        = 32 << 10 // go-rtmp's read loop and write loop
	// Per chunk stream: go-rtmp's buffer gets room for bytes.MinRead before each read, so
	// even a 1-byte message takes 1 KiB; and go-rtmp's and the guard's state for it.
	chunkStreamCost = 2*bytes.MinRead + 1<<10
)

// ConnMemory bounds the memory a connection may make the server hold while its guard
// lets it buffer up to buffered message bytes: go-rtmp keeps each chunk stream's message
// in a bytes.Buffer, which grows by doubling and so may take up to twice what it holds,
// each chunk stream has a floor cost, and every connection has its fixed buffers. A
// publisher also has its handler's copy of the last message (up to twice
// Config.MaxMessageSize, by the same growth).
func ConnMemory(buffered int64) int64 {
	return 2*buffered + maxChunkStreams*chunkStreamCost +
		guardReadBuffer + goRTMPReadBuffer + goRTMPWriteBuffer + goRTMPCopyBuffer + connStacks
}

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
	conns   connTable
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
	if cfg.MaxConnectionsPerAddress <= 0 {
		cfg.MaxConnectionsPerAddress = 16
	}
	if cfg.MaxSetupConnections <= 0 {
		cfg.MaxSetupConnections = 64
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 8 << 20
	}
	if cfg.MaxMessageSize < SetupMaxMessageSize {
		return nil, fmt.Errorf("rtmp: MaxMessageSize %d is below the %d bytes allowed before publish", cfg.MaxMessageSize, SetupMaxMessageSize)
	}
	return &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "rtmp"),
		conns:   newConnTable(cfg.MaxConnections, cfg.MaxConnectionsPerAddress, cfg.MaxSetupConnections),
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
	for c := range s.conns.all {
		_ = c.Conn.Close()
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

// buffered is the message bytes buffered for all open connections, as their guards count.
func (s *Server) buffered() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for c := range s.conns.all {
		n += c.guard.held.Load()
	}
	return n
}

// setupLimits apply until the publish command is accepted; publishLimits after.
func (s *Server) setupLimits() guardLimits {
	return guardLimits{
		MaxMessageSize:  SetupMaxMessageSize,
		MaxChunkSize:    maxChunkSize,
		MaxChunkStreams: maxChunkStreams,
		MaxPending:      SetupMaxBuffered,
	}
}

func (s *Server) publishLimits() guardLimits {
	return guardLimits{
		MaxMessageSize:  uint32(s.cfg.MaxMessageSize),
		MaxChunkSize:    maxChunkSize,
		MaxChunkStreams: maxChunkStreams,
		MaxPending:      bufferedMessages * int64(s.cfg.MaxMessageSize),
	}
}

// admit decides whether nc may stay, and wraps it; its setup deadline starts now.
func (s *Server) admit(nc net.Conn) (*conn, error) {
	c := &conn{
		Conn:         nc,
		server:       s,
		addr:         addrKey(nc.RemoteAddr()),
		readTimeout:  s.cfg.ReadTimeout,
		writeTimeout: s.cfg.WriteTimeout,
	}
	c.setupDeadline.Store(time.Now().Add(s.cfg.SetupTimeout).UnixNano())

	s.mu.Lock()
	evict, reason := s.conns.admit(c.addr)
	var evicted int64
	if reason == "" {
		if evict != nil {
			s.conns.remove(evict)
			s.refused[RefusedEvicted]++
			evicted = s.refused[RefusedEvicted]
		}
		c.guard = newChunkGuard(bufio.NewReaderSize(c, guardReadBuffer), s.setupLimits())
		s.conns.add(c)
		s.active.Store(int64(len(s.conns.all)))
	} else {
		s.refused[reason]++
	}
	refused := s.refused[reason]
	s.mu.Unlock()

	// An address that keeps reconnecting is refused or evicted thousands of times: the
	// logs get a sample, the counters everything.
	sampled := func(n int64) bool { return n == 1 || n%100 == 0 }
	if evict != nil {
		_ = evict.Conn.Close() // its read fails, and go-rtmp closes it
		if sampled(evicted) {
			s.log.Warn("rtmp connection dropped", "reason", RefusedEvicted, "remote", evict.RemoteAddr().String(),
				"for", nc.RemoteAddr().String(), "limit", s.cfg.MaxConnections, "refused_total", evicted)
		}
	}
	if reason != "" {
		if sampled(refused) {
			s.log.Warn("rtmp connection refused", "reason", reason, "remote", nc.RemoteAddr().String(),
				"limit", s.cfg.MaxConnections, "limit_per_address", s.cfg.MaxConnectionsPerAddress,
				"limit_in_setup", s.cfg.MaxSetupConnections, "refused_total", refused)
		}
		return nil, fmt.Errorf("rtmp: connection from %s refused: %s", nc.RemoteAddr(), reason)
	}
	return c, nil
}

func (s *Server) onConnect(nc net.Conn) (io.ReadWriteCloser, *gortmp.ConnConfig) {
	c := nc.(*conn) // what limitListener.Accept returns
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
			MaxChunkSize:      maxChunkSize,
			MaxChunkStreams:   maxChunkStreams,
			MaxMessageSize:    uint32(s.cfg.MaxMessageSize),
			MaxMessageStreams: maxMessageStreams,
		},
		ReaderBufferSize: goRTMPReadBuffer,
		WriterBufferSize: goRTMPWriteBuffer,
		Logger:           discard,
	}
}

// limitListener admits connections (Server.admit) and closes the others right away.
type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c, err := l.s.admit(nc)
		if err != nil {
			_ = nc.Close()
			continue
		}
		return c, nil
	}
}

// conn applies deadlines and the chunk guard to one client connection. go-rtmp reads through
// it; the guard fails the read on protocol abuse, which makes go-rtmp close the connection.
type conn struct {
	net.Conn
	server       *Server
	addr         netip.Addr // what the per-address limit counts by (addrKey)
	handler      *handler
	guard        *chunkGuard
	readTimeout  time.Duration
	writeTimeout time.Duration
	// setupDeadline is when a connection that has not started publishing is dropped, its
	// reads and writes failing; zero once it publishes.
	setupDeadline atomic.Int64
	closeOnce     sync.Once
	// Only Read uses these: when a paced read last started, and whether the last read
	// filled its buffer.
	lastRead time.Time
	filled   bool

	// Guarded by server.mu.
	publishing bool   // counted in server.publishing; not in its address's setup list
	tracked    bool   // in server.conns: neither closed nor evicted
	seq        uint64 // order of admission
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
		c.timedOut(err, false)
	}
	return n, err
}

// timedOut records a read or write deadline that passed as the reason for dropping.
func (c *conn) timedOut(err error, write bool) {
	var ne net.Error
	switch {
	case !errors.As(err, &ne) || !ne.Timeout():
	case c.setupDeadline.Load() != 0:
		c.handler.fail(RefusedTimeout, fmt.Errorf("publish command not accepted within %s of connecting: %w", c.server.cfg.SetupTimeout, err))
	case write:
		c.handler.fail(RefusedTimeout, fmt.Errorf("client took no data for %s: %w", c.writeTimeout, err))
	default:
		c.handler.fail(RefusedTimeout, fmt.Errorf("no data for %s: %w", c.readTimeout, err))
	}
}

// startPublishing ends the setup deadline and limits, and counts the connection as
// publishing. It fails when the connection was closed or evicted meanwhile.
func (c *conn) startPublishing() error {
	s := c.server
	s.mu.Lock()
	if !c.tracked {
		s.mu.Unlock()
		return errors.New("connection closed before its publish command was accepted")
	}
	if !c.publishing {
		s.conns.published(c)
		s.publishing.Add(1)
	}
	s.mu.Unlock()
	c.setupDeadline.Store(0)
	c.guard.setLimits(s.publishLimits())
	return nil
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
	// A client that does not read its responses must not outlast the setup deadline either.
	dl := time.Now().Add(c.writeTimeout)
	if sd := c.setupDeadline.Load(); sd != 0 && sd < dl.UnixNano() {
		dl = time.Unix(0, sd)
	}
	if err := c.Conn.SetWriteDeadline(dl); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.timedOut(err, true)
	}
	return n, err
}

func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		s := c.server
		s.mu.Lock()
		if c.tracked {
			s.conns.remove(c)
			s.active.Store(int64(len(s.conns.all)))
		}
		if c.publishing {
			s.publishing.Add(-1)
		}
		s.mu.Unlock()
	})
	return err
}
