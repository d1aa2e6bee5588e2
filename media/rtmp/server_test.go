package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"onair/media"
	"onair/scripts/testenv"
)

// TestReadInterval: with enough connections publishing, a publishing connection paced by
// Config.ReadInterval reads what a sender writes frame by frame in about one read per
// interval, and loses or reorders nothing.
func TestReadInterval(t *testing.T) {
	const (
		writes = 150
		gap    = 2 * time.Millisecond
	)
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{
		{"20ms", 20 * time.Millisecond},
		{"50ms", 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := testenv.TCPPair(t)
			srv := &Server{cfg: Config{ReadInterval: tc.interval}}
			srv.publishing.Store(pacedFrom)
			c := &conn{Conn: server, server: srv, readTimeout: 10 * time.Second}

			want := make([]byte, 0, writes*100)
			for i := range writes {
				want = append(want, bytes.Repeat([]byte{byte(i)}, 100)...)
			}
			go func() {
				for i := range writes {
					if _, err := client.Write(want[i*100 : (i+1)*100]); err != nil {
						return
					}
					time.Sleep(gap)
				}
			}()

			got := make([]byte, 0, len(want))
			buf := make([]byte, 64<<10)
			reads := 0
			var first time.Time
			for len(got) < len(want) {
				n, err := c.Read(buf)
				if n > 0 {
					if reads == 0 {
						first = time.Now()
					}
					reads++
					got = append(got, buf[:n]...)
				}
				if err != nil {
					t.Fatalf("read after %d of %d bytes: %v", len(got), len(want), err)
				}
			}
			span := time.Since(first)
			if !bytes.Equal(got, want) {
				t.Fatal("the bytes read differ from the bytes written")
			}
			if limit := int(span/tc.interval) + 2; reads > limit {
				t.Errorf("%d reads over %s, want at most %d (one per %s)", reads, span.Round(time.Millisecond), limit, tc.interval)
			}

			// A burst larger than the buffer: every read that fills its buffer is marked so,
			// and the read after it does not wait (TestPaceWait).
			burst := bytes.Repeat([]byte{7}, 1<<20)
			go func() { _, _ = client.Write(burst) }()
			small := make([]byte, 4<<10)
			full := 0
			for got := 0; got < len(burst); {
				n, err := c.Read(small)
				if err != nil {
					t.Fatalf("burst: read after %d bytes: %v", got, err)
				}
				if c.filled != (n == len(small)) {
					t.Fatalf("burst: a read of %d bytes into %d left filled = %v", n, len(small), c.filled)
				}
				if c.filled {
					full++
				}
				got += n
			}
			if full == 0 {
				t.Error("burst: no read filled its buffer")
			}
		})
	}
}

// TestPacedWhen: reads are paced only once the connection publishes, and only while at
// least pacedFrom connections do.
func TestPacedWhen(t *testing.T) {
	for _, tc := range []struct {
		name       string
		publishing int64
		inSetup    bool
		want       bool
	}{
		{"enough publishers", pacedFrom, false, true},
		{"too few publishers", pacedFrom - 1, false, false},
		{"still in setup", pacedFrom, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := testenv.TCPPair(t)
			srv := &Server{cfg: Config{ReadInterval: time.Millisecond}}
			srv.publishing.Store(tc.publishing)
			c := &conn{Conn: server, server: srv, readTimeout: 10 * time.Second}
			if tc.inSetup {
				c.setupDeadline.Store(time.Now().Add(time.Minute).UnixNano())
			}
			if _, err := client.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(make([]byte, 8)); err != nil {
				t.Fatal(err)
			}
			if paced := !c.lastRead.IsZero(); paced != tc.want {
				t.Errorf("paced %v, want %v", paced, tc.want)
			}
		})
	}
}

// TestPublishingCount: a connection counts as publishing from its publish command until
// it closes, once, and not at all when it closed first.
func TestPublishingCount(t *testing.T) {
	srv := newServer(t, Config{})
	a, b := admitPair(t, srv), admitPair(t, srv)
	for _, c := range []*conn{a, a, b} {
		if err := c.startPublishing(); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.publishing.Load(); n != 2 {
		t.Fatalf("publishing %d after two publish commands, want 2", n)
	}
	_ = a.Close()
	_ = a.Close()
	if n := srv.publishing.Load(); n != 1 {
		t.Fatalf("publishing %d after one connection closed (twice), want 1", n)
	}
	c := admitPair(t, srv)
	_ = c.Close()
	if err := c.startPublishing(); err == nil {
		t.Error("a publish command on a closed connection was accepted")
	}
	if n := srv.publishing.Load(); n != 1 {
		t.Fatalf("publishing %d after a publish command on a closed connection, want 1", n)
	}
}

// TestPaceWait: a paced read waits for the next multiple of the interval only when the
// previous one started less than an interval ago and did not fill its buffer.
func TestPaceWait(t *testing.T) {
	const iv = 20 * time.Millisecond
	now := time.Unix(1_700_000_000, 5_000_000) // 5 ms past a multiple of 20 ms
	for _, tc := range []struct {
		name      string
		sinceLast time.Duration
		filled    bool
		want      time.Duration
	}{
		{"just read", time.Millisecond, false, 15 * time.Millisecond},
		{"read an interval ago", iv, false, 0},
		{"first read", 0, false, 0}, // lastRead zero: long ago
		{"buffer filled", time.Millisecond, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{filled: tc.filled}
			if tc.sinceLast > 0 {
				c.lastRead = now.Add(-tc.sinceLast)
			}
			if got := c.paceWait(now, iv); got != tc.want {
				t.Errorf("paceWait = %s, want %s", got, tc.want)
			}
		})
	}
}

const testKey = "0123456789abcdef-test-key"

// newServer builds a server publishing testKey as stream "cam"; cfg's other fields apply.
func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Hub == nil {
		cfg.Hub = media.NewHub(media.HubConfig{})
	}
	if cfg.Resolver == nil {
		cfg.Resolver = media.StaticKeys{testKey: {Name: "cam"}}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// admitPair admits the server's end of a loopback TCP connection, as Accept does.
func admitPair(t *testing.T, srv *Server) *conn {
	t.Helper()
	_, server := testenv.TCPPair(t)
	c, err := srv.admit(server)
	if err != nil {
		t.Fatal(err)
	}
	c.handler = &handler{server: srv, conn: c, log: srv.log}
	return c
}

// runServer serves on a loopback port until the test ends and returns the address.
func runServer(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return ln.Addr().String()
}

// rawClient speaks RTMP chunk by chunk, as an attacker or a minimal publisher does.
type rawClient struct {
	t   *testing.T
	c   net.Conn
	e   *chunkEncoder
	got []byte // what the server sent after the handshake
}

// dialRaw connects to addr from the loopback address from (any when empty) and does the
// handshake.
func dialRaw(t *testing.T, addr, from string) *rawClient {
	t.Helper()
	c, err := dialFrom(addr, from)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	r := &rawClient{t: t, c: c, e: newChunkEncoder()}
	if _, err := c.Write(testHandshake()[:1+1536]); err != nil {
		t.Fatal(err)
	}
	s := make([]byte, handshakeSize)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, s); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if _, err := c.Write(s[1 : 1+1536]); err != nil { // C2 echoes S1
		t.Fatal(err)
	}
	return r
}

func dialFrom(addr, from string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return d.Dial("tcp", addr)
}

// flush sends what the encoder wrote and forgets it, so that the client holds no copy.
func (r *rawClient) flush() error {
	_, err := r.c.Write(r.e.wire)
	r.e.wire, r.e.clean, r.e.want = nil, nil, nil
	for _, s := range r.e.streams {
		s.payload = nil
	}
	return err
}

// waitFor reads until the server has sent s.
func (r *rawClient) waitFor(s string) {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for !bytes.Contains(r.got, []byte(s)) {
		n, err := r.c.Read(buf)
		r.got = append(r.got, buf[:n]...)
		if err != nil {
			r.t.Fatalf("waiting for %q: %v", s, err)
		}
	}
}

// closed reports whether the server has closed the connection, waiting up to d.
func (r *rawClient) closed(d time.Duration) bool {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, r.c)
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

// connectCommand is a connect command whose length is a multiple of the initial chunk
// size, so that the bytes the guard charges for it are its length.
func connectCommand(app string) []byte {
	obj := map[string]any{"app": app, "type": "nonprivate", "tcUrl": "rtmp://localhost/" + app, "pad": ""}
	n := len(amf0Values("connect", 1, obj))
	obj["pad"] = strings.Repeat("x", (n/initialChunkSize+1)*initialChunkSize-n)
	return amf0Values("connect", 1, obj)
}

// partial sends n bytes (a multiple of the chunk size) of a video message of the given
// length on chunk stream csid, and leaves the message unfinished.
func (r *rawClient) partial(csid, length, n int) {
	e := r.e
	e.begin(0, csid, 0, typeVideo, 1, make([]byte, length))
	for sent := e.chunkSize; sent < n; sent += e.chunkSize {
		e.next(csid)
	}
}

// liveHeap is the memory the process uses for live objects and goroutine stacks.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// heapBack waits until the live heap is back within 1 MiB of before: what closed
// connections held is freed once their goroutines have ended.
func heapBack(t *testing.T, before int64) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		grown := liveHeap() - before
		return grown <= 1<<20, fmt.Sprintf("memory %d KiB above where it was before the connections", grown>>10)
	})
}

// TestSetupAttackHoldsLittle reproduces issue 12: connections that never connect or
// publish, sending partial large messages. Before publish the server buffers at most
// SetupMaxBuffered message bytes for each (by the guard's accounting), its memory grows by
// at most ConnMemory of that per connection, refuses what goes further, and has its
// memory back once they are gone.
func TestSetupAttackHoldsLittle(t *testing.T) {
	const conns = 20
	connectLen := len(connectCommand("live"))
	for _, tc := range []struct {
		name string
		// send writes the attack after the handshake.
		send func(r *rawClient)
		// held is what the server must then buffer for the connection, having answered its
		// connect command; -1: the server must close the connection.
		held int64
	}{
		{"partial 8 MiB messages", func(r *rawClient) {
			// As reported: two unfinished messages of 8 MiB (rtmp.max_message_size), sent
			// for as long as the server reads them.
			go func() {
				for _, csid := range []int{4, 5} {
					r.e.header(0, csid, 0, 8<<20, typeVideo, 1)
					if r.flush() != nil {
						return
					}
					chunk := append([]byte{0xc0 | byte(csid)}, make([]byte, initialChunkSize)...)
					for range (8<<20)/initialChunkSize - 1 {
						if _, err := r.c.Write(chunk); err != nil {
							return
						}
					}
				}
			}()
		}, -1},
		{"partial messages up to the bound", func(r *rawClient) {
			connect := connectCommand("live")
			left := SetupMaxBuffered - len(connect)
			for csid := 4; left > 0; csid++ {
				n := min(left, SetupMaxMessageSize-initialChunkSize)
				r.partial(csid, SetupMaxMessageSize, n)
				left -= n
			}
			r.e.msg(0, 3, 0, typeCommandAMF0, 0, connect)
			if err := r.flush(); err != nil {
				r.t.Error(err)
			}
		}, SetupMaxBuffered},
		{"one byte on every chunk stream", func(r *rawClient) {
			// go-rtmp's state and smallest buffer for a chunk stream cost far more than the
			// byte the guard counts: ConnMemory's part per chunk stream covers them.
			r.e.setChunkSize(1)
			for csid := 4; csid < 4+maxChunkStreams-2; csid++ {
				r.partial(csid, 2, 1)
			}
			r.e.msg(0, 3, 0, typeCommandAMF0, 0, connectCommand("live"))
			if err := r.flush(); err != nil {
				r.t.Error(err)
			}
		}, int64(4 + connectLen + maxChunkStreams - 2)},
		{"one chunk beyond the bound", func(r *rawClient) {
			connect := connectCommand("live")
			left := SetupMaxBuffered - len(connect) + initialChunkSize
			r.e.msg(0, 3, 0, typeCommandAMF0, 0, connect)
			for csid := 4; left > 0; csid++ {
				n := min(left, SetupMaxMessageSize-initialChunkSize)
				r.partial(csid, SetupMaxMessageSize, n)
				left -= n
			}
			_ = r.flush()
		}, -1},
		{"one message over the size limit", func(r *rawClient) {
			r.e.msg(0, 3, 0, typeCommandAMF0, 0, connectCommand("live"))
			r.e.header(0, 4, 0, SetupMaxMessageSize+1, typeVideo, 1)
			_ = r.flush()
		}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, Config{SetupTimeout: time.Minute, ReadTimeout: time.Minute, MaxConnectionsPerAddress: conns})
			addr := runServer(t, srv)
			before := liveHeap()

			clients := make([]*rawClient, conns)
			for i := range clients {
				clients[i] = dialRaw(t, addr, "")
				tc.send(clients[i])
			}
			if tc.held < 0 {
				for i, r := range clients {
					if !r.closed(10 * time.Second) {
						t.Fatalf("connection %d: still open; the server buffers %d bytes for %d connections", i, srv.buffered(), conns)
					}
				}
				if n := srv.RefusedByReason()[RefusedProtocol]; n != conns {
					t.Errorf("%d connections refused for a protocol error, want %d", n, conns)
				}
			} else {
				for _, r := range clients {
					r.waitFor("_result") // the connect command, after everything else, was read
				}
				if got, want := srv.buffered(), conns*tc.held; got != want {
					t.Errorf("the server buffers %d bytes for %d connections, want %d", got, conns, want)
				}
				grown := liveHeap() - before
				if bound := conns * ConnMemory(tc.held); grown > bound {
					t.Errorf("memory grew by %d KiB for %d connections, bound %d KiB", grown>>10, conns, bound>>10)
				}
				t.Logf("memory grew by %d KiB for %d connections (%d KiB each; ConnMemory %d KiB)", grown>>10, conns, grown/conns>>10, ConnMemory(tc.held)>>10)
			}

			for _, r := range clients {
				_ = r.c.Close()
			}
			testenv.Eventually(t, 10*time.Second, func() (bool, string) {
				return srv.Connections() == 0, fmt.Sprintf("%d connections open", srv.Connections())
			})
			heapBack(t, before)
		})
	}
}

// publish sends connect, createStream and publish for key; wait waits for the answer.
func (r *rawClient) publish(key string, wait bool) {
	r.t.Helper()
	r.e.msg(0, 3, 0, typeCommandAMF0, 0, connectCommand("live"))
	r.e.msg(0, 3, 0, typeCommandAMF0, 0, amf0Values("createStream", 2, nil))
	r.e.msg(0, 8, 0, typeCommandAMF0, 1, amf0Values("publish", 3, nil, key, "live"))
	if err := r.flush(); err != nil {
		r.t.Fatal(err)
	}
	if wait {
		r.waitFor("NetStream.Publish.Start")
	}
}

// TestSetupDeadline: a connection that has not published is dropped at the setup
// deadline, counted from its accept, even while it keeps sending (the read timeout is
// far longer).
func TestSetupDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		// trickle is what the client sends, a byte at a time, after handshake (if done).
		trickle   []byte
		handshake bool
	}{
		{"trickles the handshake", testHandshake()[:1+1536], false},
		{"trickles a connect command", func() []byte {
			e := newChunkEncoder()
			e.msg(0, 3, 0, typeCommandAMF0, 0, amf0Values("connect", 1, map[string]any{"app": "live", "pad": strings.Repeat("x", 4000)}))
			return e.wire
		}(), true},
		{"connects and waits", func() []byte {
			e := newChunkEncoder()
			e.msg(0, 3, 0, typeCommandAMF0, 0, connectCommand("live"))
			return e.wire
		}(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, Config{SetupTimeout: 300 * time.Millisecond, ReadTimeout: time.Hour})
			addr := runServer(t, srv)
			var c net.Conn
			if tc.handshake {
				c = dialRaw(t, addr, "").c
			} else {
				var err error
				if c, err = dialFrom(addr, ""); err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			go func() {
				for _, b := range tc.trickle {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			r := &rawClient{t: t, c: c}
			if !r.closed(20 * time.Second) {
				t.Fatal("the connection is still open")
			}
			testenv.Eventually(t, 5*time.Second, func() (bool, string) {
				n := srv.RefusedByReason()[RefusedTimeout]
				return n == 1, fmt.Sprintf("%d connections refused for a timeout", n)
			})
		})
	}

	t.Run("does not read", func(t *testing.T) {
		// Writes time out at the setup deadline too, not a write timeout later.
		srv := newServer(t, Config{SetupTimeout: time.Hour, WriteTimeout: time.Hour})
		c := admitPair(t, srv)
		c.setupDeadline.Store(time.Now().Add(-time.Millisecond).UnixNano())
		if _, err := c.Write([]byte("response")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write after the setup deadline: %v", err)
		}
		if n := srv.RefusedByReason()[RefusedTimeout]; n != 1 {
			t.Errorf("%d connections refused for a timeout, want 1", n)
		}
	})
}

// TestPublishLimits: once its publish command is accepted a connection may send messages
// up to MaxMessageSize and buffer up to twice that, and no more; its setup deadline is
// gone; what it held is freed when it goes. A client that sends media right after its publish command, without
// waiting for the answer, gets the publisher's limits too.
func TestPublishLimits(t *testing.T) {
	const maxMessage = 256 << 10
	for _, wait := range []bool{true, false} {
		t.Run(fmt.Sprintf("waits for the answer %v", wait), func(t *testing.T) {
			srv := newServer(t, Config{SetupTimeout: time.Minute, ReadTimeout: time.Hour, MaxMessageSize: maxMessage})
			addr := runServer(t, srv)
			before := liveHeap()
			r := dialRaw(t, addr, "")
			r.publish(testKey, wait)
			part := maxMessage - 4096 // unfinished messages of this many bytes
			r.e.setChunkSize(4096)
			r.partial(10, maxMessage, part)
			r.partial(11, maxMessage, part)
			if err := r.flush(); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 10*time.Second, func() (bool, string) {
				n := srv.buffered()
				return n >= int64(2*part), fmt.Sprintf("buffered %d bytes", n)
			})
			if n, bound := srv.buffered(), int64(bufferedMessages*maxMessage); n > bound {
				t.Fatalf("buffered %d bytes, bound %d", n, bound)
			}
			srv.mu.Lock()
			for c := range srv.conns.all {
				if !c.publishing || c.setupDeadline.Load() != 0 {
					t.Errorf("connection publishing %v, setup deadline %d", c.publishing, c.setupDeadline.Load())
				}
			}
			srv.mu.Unlock()
			r.partial(12, maxMessage, part)
			_ = r.flush()
			if !r.closed(10 * time.Second) {
				t.Fatalf("still open with %d bytes buffered, bound %d", srv.buffered(), bufferedMessages*maxMessage)
			}
			if got := srv.RefusedByReason(); got[RefusedProtocol] != 1 || len(got) != 1 {
				t.Errorf("refused %v, want one protocol error", got)
			}
			testenv.Eventually(t, 10*time.Second, func() (bool, string) {
				return srv.Connections() == 0, fmt.Sprintf("%d connections open", srv.Connections())
			})
			heapBack(t, before)
		})
	}
}

// TestAdmission: one address holding every connection, idle, cannot keep a publisher
// from another address out; nor can it go past its own limit.
func TestAdmission(t *testing.T) {
	const attacker, studio = "127.0.0.2", "127.0.0.1"
	for _, tc := range []struct {
		name            string
		max, perAddr    int
		attackerHolds   int
		attackerRefused string
		evicted         int64
	}{
		{"per-address limit", 8, 4, 4, RefusedTooManyFromAddress, 0},
		{"one address fills the server", 4, 4, 3, RefusedTooMany, 1}, // evicted for the publisher
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, Config{SetupTimeout: time.Hour, ReadTimeout: time.Hour, MaxConnections: tc.max, MaxConnectionsPerAddress: tc.perAddr})
			addr := runServer(t, srv)
			var idle []*rawClient
			for range tc.max {
				idle = append(idle, dialRaw(t, addr, attacker))
				if len(idle) == tc.perAddr {
					break
				}
			}
			r := dialRaw(t, addr, studio)
			r.publish(testKey, true)

			extra := &rawClient{t: t}
			var err error
			if extra.c, err = dialFrom(addr, attacker); err != nil {
				t.Fatal(err)
			}
			defer extra.c.Close()
			if !extra.closed(10 * time.Second) {
				t.Fatal("the attacker's extra connection is open")
			}
			open := 0
			for _, c := range idle {
				if !c.closed(100 * time.Millisecond) {
					open++
				}
			}
			if open != tc.attackerHolds {
				t.Errorf("the attacker holds %d connections, want %d", open, tc.attackerHolds)
			}
			got := srv.RefusedByReason()
			if got[tc.attackerRefused] != 1 {
				t.Errorf("refused %v, want one %s", got, tc.attackerRefused)
			}
			if got[RefusedEvicted] != tc.evicted {
				t.Errorf("refused %v, want %d evicted", got, tc.evicted)
			}
			if srv.publishing.Load() != 1 {
				t.Error("the publisher is not publishing")
			}
		})
	}
}
