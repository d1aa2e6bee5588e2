package rtmp

import (
	"bytes"
	"testing"
	"time"

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
	srv := &Server{}
	newConn := func() *conn {
		_, server := testenv.TCPPair(t)
		return &conn{Conn: server, server: srv}
	}
	a, b := newConn(), newConn()
	a.startPublishing()
	a.startPublishing()
	b.startPublishing()
	if n := srv.publishing.Load(); n != 2 {
		t.Fatalf("publishing %d after two publish commands, want 2", n)
	}
	_ = a.Close()
	_ = a.Close()
	if n := srv.publishing.Load(); n != 1 {
		t.Fatalf("publishing %d after one connection closed (twice), want 1", n)
	}
	c := newConn()
	_ = c.Close()
	c.startPublishing()
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
