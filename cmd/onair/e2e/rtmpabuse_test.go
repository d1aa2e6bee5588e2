package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yutopp/go-amf0"

	"onair/media/rtmp"
	"onair/scripts/hostile"
	"onair/scripts/testenv"
)

// chunkSize is the chunk size the attackers write at.
const chunkSize = hostile.ChunkSize

// chunked is a whole message on chunk stream csid: a fmt 0 header, then fmt 3 headers.
func chunked(csid int, typeID byte, msid byte, payload []byte) []byte {
	h := hostile.ChunkHeader(csid, len(payload), typeID)
	h[8] = msid
	out := append([]byte(nil), h...)
	for i := 0; i < len(payload); i += chunkSize {
		if i > 0 {
			out = append(out, 0xc0|byte(csid))
		}
		out = append(out, payload[i:min(i+chunkSize, len(payload))]...)
	}
	return out
}

// writeUnfinished writes the first n bytes (a multiple of the chunk size) of a video
// message of the given length on chunk stream csid, a megabyte of chunks at a time.
func writeUnfinished(w io.Writer, csid, length, n int) error {
	if _, err := w.Write(hostile.Unfinished(csid, length, chunkSize)); err != nil {
		return err
	}
	block := bytes.Repeat(append([]byte{0xc0 | byte(csid)}, make([]byte, chunkSize)...), (1<<20)/chunkSize)
	for left := n - chunkSize; left > 0; {
		k := min(left, 1<<20)
		if _, err := w.Write(block[:k/chunkSize*(chunkSize+1)]); err != nil {
			return err
		}
		left -= k
	}
	return nil
}

// connectCommand is an AMF0 connect command padded to a multiple of the chunk size, so
// that the bytes the server counts for it are its length.
func connectCommand(t *testing.T) []byte {
	t.Helper()
	enc := func(pad int) []byte {
		var b bytes.Buffer
		for _, v := range []any{"connect", 1, map[string]any{"app": "live", "type": "nonprivate", "pad": strings.Repeat("x", pad)}} {
			if err := amf0.NewEncoder(&b).Encode(v); err != nil {
				t.Fatal(err)
			}
		}
		return b.Bytes()
	}
	n := len(enc(0))
	return enc((n/chunkSize+1)*chunkSize - n)
}

// TestRTMPSetupMemory reproduces issue 12's first finding: 40 connections that never
// publish, each sending unfinished 8 MiB messages, held about 22 MiB each. Before publish
// a connection may now buffer rtmp.SetupMaxBuffered bytes, so onair's memory grows by at
// most rtmp.ConnMemory of that per connection (plus a margin for the runtime), whether
// they send what was reported or fill exactly what the server allows.
func TestRTMPSetupMemory(t *testing.T) {
	const (
		conns  = 40
		margin = 32 << 20 // the Go runtime's own growth: garbage before a collection
	)
	key := newKey(t)
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: []string{
		streamsEnv(map[string]string{"cam": key}),
		"ONAIR_RTMP_SETUP_TIMEOUT=2m", // the attackers must not be dropped for being slow
	}})
	addr := rtmpAddr(t, o)
	bound := int(conns*rtmp.ConnMemory(rtmp.SetupMaxBuffered)+margin) >> 10
	before := rssKB(t, o.Pid())

	attackers := func(t *testing.T) []net.Conn {
		cs := make([]net.Conn, conns)
		for i := range cs {
			c, err := hostile.DialFrom(addr, fmt.Sprintf("127.0.1.%d", i+1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			handshake(t, c)
			cs[i] = c
		}
		return cs
	}

	t.Run("unfinished 8 MiB messages", func(t *testing.T) {
		var closed atomic.Int64
		for _, c := range attackers(t) {
			go func() {
				for _, csid := range []int{4, 5} {
					if writeUnfinished(c, csid, 8<<20, 8<<20-chunkSize) != nil {
						break
					}
				}
			}()
			go func() {
				_, _ = io.Copy(io.Discard, c)
				closed.Add(1)
			}()
		}
		// Either the server refuses them all, or its memory shows it took their bytes.
		testenv.Eventually(t, 60*time.Second, func() (bool, string) {
			grown := rssKB(t, o.Pid()) - before
			return closed.Load() == conns || grown > bound,
				fmt.Sprintf("%d of %d connections closed, RSS grew by %d KiB", closed.Load(), conns, grown)
		})
		if grown := rssKB(t, o.Pid()) - before; grown > bound {
			t.Fatalf("RSS grew by %d MiB for %d connections that never published, bound %d MiB", grown>>10, conns, bound>>10)
		}
	})

	t.Run("unfinished messages up to the limit", func(t *testing.T) {
		connect := connectCommand(t)
		attack := hostile.UnfinishedUpTo(rtmp.SetupMaxMessageSize, rtmp.SetupMaxBuffered-len(connect))
		attack = append(attack, chunked(3, 20, 0, connect)...)
		for _, c := range attackers(t) {
			if _, err := c.Write(attack); err != nil {
				t.Fatal(err)
			}
			// The answer to connect shows that the server has read everything before it.
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			var got []byte
			buf := make([]byte, 4096)
			for !bytes.Contains(got, []byte("_result")) {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("waiting for the answer to connect: %v", err)
				}
				got = append(got, buf[:n]...)
			}
		}
		grown := rssKB(t, o.Pid()) - before
		if grown > bound {
			t.Fatalf("RSS grew by %d MiB for %d connections buffering %d KiB each, bound %d MiB",
				grown>>10, conns, rtmp.SetupMaxBuffered>>10, bound>>10)
		}
		t.Logf("RSS grew by %d KiB for %d connections buffering %d KiB each (bound %d KiB)", grown, conns, rtmp.SetupMaxBuffered>>10, bound)
	})

	publishAndWatch(t, o, key, "cam") // a publisher still gets in
}

// publishAndWatch publishes with ffmpeg (from 127.0.0.1) and waits until a second of its
// video plays over HLS.
func publishAndWatch(t *testing.T, o *testenv.Onair, key, name string) {
	t.Helper()
	testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{}) // killed when the test ends
	r := readHLS(t, waitIndex(t, o, name))
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		v, _, problems := r.snapshot()
		return v >= 30, fmt.Sprintf("received %d video frames; %v", v, problems)
	})
}

// flood keeps up to n idle connections open from one address, dialing again whenever
// the server closes one, as issue 12's second finding describes.
type flood struct {
	slots []atomic.Int32 // 0 dialing, 1 open, 2 closed by the server at least once
	open  atomic.Int64
}

func startFlood(t *testing.T, addr, from string, n int) *flood {
	f := &flood{slots: make([]atomic.Int32, n)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	for i := range f.slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := hostile.DialFrom(addr, from)
				if err == nil {
					f.slots[i].CompareAndSwap(0, 1)
					f.open.Add(1)
					stop := context.AfterFunc(ctx, func() { c.Close() })
					_, _ = io.Copy(io.Discard, c) // until the server closes it
					stop()
					c.Close()
					f.open.Add(-1)
					f.slots[i].Store(2)
				}
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
	}
	return f
}

// settled reports whether every slot is open or has been refused: the flood holds what
// the server lets it.
func (f *flood) settled() (bool, string) {
	refused := 0
	for i := range f.slots {
		switch f.slots[i].Load() {
		case 0:
			return false, fmt.Sprintf("slot %d still dialing", i)
		case 2:
			refused++
		}
	}
	return refused > 0, fmt.Sprintf("%d open, %d refused at least once", f.open.Load(), refused)
}

// TestRTMPConnectionFlood reproduces issue 12's second finding: one address holding idle
// connections up to rtmp.max_connections, reconnecting whenever one is closed, kept every
// publisher out. The flood comes from 127.0.0.2; ffmpeg publishes from 127.0.0.1.
func TestRTMPConnectionFlood(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     []string
		flood   int
		holds   int    // connections the flood keeps once the publisher is in
		refusal string // reason counted for the flood's refused connections
	}{
		// The per-address limit (default 16) stops the flood well below max_connections.
		{"per-address limit", []string{"ONAIR_RTMP_MAX_CONNECTIONS=40"}, 60, 16, rtmp.RefusedTooManyFromAddress},
		// Without it, the flood fills max_connections; the publisher takes the place of
		// one of its idle connections.
		{"one address fills the server", []string{"ONAIR_RTMP_MAX_CONNECTIONS=20", "ONAIR_RTMP_MAX_CONNECTIONS_PER_ADDRESS=20"}, 30, 19, rtmp.RefusedEvicted},
		// Connections that never publish fill rtmp.max_setup_connections, under both other
		// limits (from many addresses they would, too: media/rtmp's connTable tests); the
		// publisher takes the place of one, and once it publishes, the flood refills it.
		{"the setup limit", []string{"ONAIR_RTMP_MAX_SETUP_CONNECTIONS=10"}, 30, 10, rtmp.RefusedTooManyInSetup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := newKey(t)
			o := testenv.StartOnair(t, testenv.OnairOptions{Env: append([]string{
				streamsEnv(map[string]string{"cam": key}),
				"ONAIR_RTMP_SETUP_TIMEOUT=2m", // the flood's connections stay until refused or evicted
			}, tc.env...)})
			f := startFlood(t, rtmpAddr(t, o), "127.0.0.2", tc.flood)
			testenv.Eventually(t, 20*time.Second, f.settled)

			publishAndWatch(t, o, key, "cam")
			// The flood's own count includes connections onair is about to refuse; onair's
			// does not.
			want := []string{
				fmt.Sprintf("onair_rtmp_connections %d\n", tc.holds+1), // and the publisher
				fmt.Sprintf(`onair_rtmp_refused_total{reason=%q}`, tc.refusal),
			}
			testenv.Eventually(t, 10*time.Second, func() (bool, string) {
				_, body := o.GetMetrics(t)
				for _, w := range want {
					if !bytes.Contains(body, []byte(w)) {
						return false, fmt.Sprintf("metrics lack %q (the flood counts %d open)", w, f.open.Load())
					}
				}
				return true, ""
			})
		})
	}
}
