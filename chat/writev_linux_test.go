package chat

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// TestConsume: what is left of a write's buffers after n bytes of them were written.
func TestConsume(t *testing.T) {
	bufs := func() [][]byte { return [][]byte{[]byte("abc"), []byte("de"), []byte("f")} }
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{0, []string{"abc", "de", "f"}},
		{1, []string{"bc", "de", "f"}},
		{3, []string{"de", "f"}},
		{4, []string{"e", "f"}},
		{5, []string{"f"}},
		{6, []string{}},
	} {
		var got []string
		for _, b := range consume(bufs(), tc.n) {
			got = append(got, string(b))
		}
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("consume(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// TestFrameWriter: more buffers than one writev takes go out in order, and a socket
// whose buffers fill up gets a short write, not a wait, with the rest returned intact.
func TestFrameWriter(t *testing.T) {
	peer, nc := testenv.TCPPair(t)
	c := &conn{h: &Hub{}, raw: rawSocket(nc)}
	if c.raw == nil {
		t.Fatal("no raw socket for a TCP connection")
	}
	w := newFrameWriter()

	// Numbered buffers of a few bytes, and of 64 KiB: the second lot fills the socket.
	var want bytes.Buffer
	numbered := func(n, size int) [][]byte {
		var bufs [][]byte
		for i := range n {
			b := fmt.Appendf(nil, "%08d", i)
			b = append(b, bytes.Repeat([]byte{'.'}, size-len(b))...)
			bufs = append(bufs, b)
			want.Write(b)
		}
		return bufs
	}
	got := make(chan []byte, 1)
	read := func(n int) {
		go func() {
			b := make([]byte, n)
			_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := io.ReadFull(peer, b)
			if err != nil {
				t.Error(err)
			}
			got <- b
		}()
	}

	small := numbered(3*maxIOV+5, 10)
	read(want.Len())
	if rest, err := w.write(c, small); err != nil || len(rest) != 0 {
		t.Fatalf("write: %d buffers left, %v", len(rest), err)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatal("small buffers: the bytes read differ from the bytes written")
	}

	want.Reset()
	big := numbered(1024, 64<<10) // 64 MiB: more than the socket buffers hold
	rest, err := w.write(c, big)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) == 0 {
		t.Fatal("64 MiB written without a reader")
	}
	read(want.Len())
	for len(rest) > 0 {
		if rest, err = w.write(c, rest); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // the reader empties the buffers
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatal("big buffers: the bytes read differ from the bytes written")
	}
}
