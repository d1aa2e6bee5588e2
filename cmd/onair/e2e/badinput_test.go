package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"onair/scripts/hostile"
	"onair/scripts/testenv"
)

func rtmpAddr(t *testing.T, o *testenv.Onair) string {
	t.Helper()
	hostport := strings.TrimPrefix(o.RTMP, "rtmp://")
	hostport, _, _ = strings.Cut(hostport, "/")
	return hostport
}

// handshake performs the client side of the plain RTMP handshake.
func handshake(t *testing.T, c net.Conn) {
	t.Helper()
	if err := hostile.RTMPHandshake(c); err != nil {
		t.Fatal(err)
	}
}

// closedWithin reports whether the server closes c within d, draining what it sends and
// stopping the writer once the server has closed.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// rssKB is the resident memory of pid.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &kb)
			return kb
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// TestBadInput throws malformed and hostile traffic at the RTMP and HTTP ports: the server
// stays up, refuses each with a closed connection or an HTTP error, memory stays bounded,
// and a good publisher still works afterwards.
func TestBadInput(t *testing.T) {
	key := newKey(t)
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: []string{
		streamsEnv(map[string]string{"cam": key}),
		"ONAIR_RTMP_SETUP_TIMEOUT=2s",
	}})
	addr := rtmpAddr(t, o)
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	rssBefore := rssKB(t, o.Pid())

	t.Run("random bytes", func(t *testing.T) {
		c := dial(t)
		junk := make([]byte, 1<<20)
		_, _ = rand.Read(junk)
		junk[0] = 0x55 // not RTMP version 3
		go func() { _, _ = c.Write(junk) }()
		if !closedWithin(c, 5*time.Second) {
			t.Fatal("connection sending random bytes was not closed")
		}
	})
	t.Run("random bytes after handshake", func(t *testing.T) {
		c := dial(t)
		handshake(t, c)
		junk := make([]byte, 1<<20)
		_, _ = rand.Read(junk)
		go func() { _, _ = c.Write(junk) }()
		if !closedWithin(c, 5*time.Second) {
			t.Fatal("connection sending random chunks was not closed")
		}
	})
	t.Run("truncated handshake", func(t *testing.T) {
		c := dial(t)
		half := make([]byte, 700)
		half[0] = 3
		if _, err := c.Write(half); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if !closedWithin(c, 10*time.Second) {
			t.Fatal("half a handshake kept the connection open past the setup timeout")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("closed after %s, want about the 2 s setup timeout", d)
		}
	})
	t.Run("absurd chunk size", func(t *testing.T) {
		c := dial(t)
		handshake(t, c)
		// Set Chunk Size (type 1) on chunk stream 2 asking for 2^31-1 bytes.
		msg := []byte{0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0}
		msg = binary.BigEndian.AppendUint32(msg, 0x7fffffff)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if !closedWithin(c, 5*time.Second) {
			t.Fatal("connection asking for an absurd chunk size was not closed")
		}
	})
	t.Run("100 MB message", func(t *testing.T) {
		c := dial(t)
		handshake(t, c)
		// A video message header declaring the largest length RTMP can express, then an
		// endless body: the server must give up at the header, not buffer 100 MB.
		hdr := []byte{0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0}
		if _, err := c.Write(hdr); err != nil {
			t.Fatal(err)
		}
		var sent int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			chunk := make([]byte, 64<<10)
			for sent < 100<<20 {
				n, err := c.Write(chunk)
				sent += int64(n)
				if err != nil {
					return
				}
			}
		}()
		if !closedWithin(c, 10*time.Second) {
			t.Fatal("connection declaring a 16 MiB message was not closed")
		}
		c.Close()
		<-done
		if sent >= 100<<20 {
			t.Fatalf("the server took all %d bytes of a hostile message", sent)
		}
	})
	t.Run("slow loris", func(t *testing.T) {
		c := dial(t)
		start := time.Now()
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			closedWithin(c, 15*time.Second)
		}()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		b := []byte{3}
		for {
			select {
			case <-closed:
				if d := time.Since(start); d > 5*time.Second {
					t.Fatalf("slow connection closed after %s, want about the 2 s setup timeout", d)
				}
				return
			case <-tick.C:
				_, _ = c.Write(b) // one byte every half second keeps plain read timeouts happy
				b[0] = 0
			}
		}
	})
	t.Run("many hostile connections", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// From 10 addresses, under the per-address limit, so that all get in.
				c, err := hostile.DialFrom(addr, fmt.Sprintf("127.0.2.%d", i%10+1))
				if err != nil {
					return
				}
				defer c.Close()
				hdr := []byte{3}
				hdr = append(hdr, make([]byte, 1536)...)
				_, _ = c.Write(hdr)
				closedWithin(c, 10*time.Second)
			}()
		}
		wg.Wait()
	})
	t.Run("oversize http headers", func(t *testing.T) {
		c, err := net.Dial("tcp", strings.TrimPrefix(o.HTTP, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			fmt.Fprintf(c, "GET /live/cam/index.m3u8 HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 2<<20))
		}()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer to an oversize request: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("oversize headers: %d, want 431", resp.StatusCode)
		}
	})

	rssAfter := rssKB(t, o.Pid())
	if grown := rssAfter - rssBefore; grown > 64<<10 {
		t.Fatalf("RSS grew by %d KiB under bad input (from %d to %d KiB)", grown, rssBefore, rssAfter)
	}
	t.Logf("RSS %d KiB before, %d KiB after the bad input", rssBefore, rssAfter)

	// The server still takes a good publisher.
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{})
	defer pub.Kill()
	r := readHLS(t, waitIndex(t, o, "cam"))
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		v, a, problems := r.snapshot()
		return v >= 30 && a >= 30, fmt.Sprintf("received %d video, %d audio; %v", v, a, problems)
	})
}

// waitIndex waits for a stream's multivariant playlist and returns its URL.
func waitIndex(t *testing.T, o *testenv.Onair, name string) string {
	t.Helper()
	index := o.HTTP + "/live/" + name + "/index.m3u8"
	waitPlaylist(t, index, 15*time.Second)
	return index
}
