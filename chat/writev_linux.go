package chat

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// maxIOV is the most buffers one writev(2) takes (IOV_MAX).
const maxIOV = 1024

// frameWriter writes sockets' queues for one flusher with writev(2) on the raw socket,
// never waiting: a socket whose buffer is full gets a short count, and the rest goes to a
// goroutine of the socket's own (drain). A write through net.Conn would need a short
// write deadline per flush to the same end, and that runtime timer (set, then fired) was
// about 8% of the server's CPU in the chat benchmark. The iovecs and the callback are
// reused from flush to flush.
type frameWriter struct {
	iov   []syscall.Iovec
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func newFrameWriter() *frameWriter {
	w := &frameWriter{}
	w.fn = w.writev
	return w
}

func (w *frameWriter) writev(fd uintptr) bool {
	for {
		n, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(len(w.iov)))
		if e != syscall.EINTR {
			w.n, w.errno = int(n), e
			return true // done, even with EAGAIN: the flusher does not wait
		}
	}
}

// write writes what of bufs the socket's buffer takes now and returns the rest (nil when
// all was written). bufs may be changed.
func (w *frameWriter) write(c *conn, bufs [][]byte) ([][]byte, error) {
	defer func() { clear(w.iov[:cap(w.iov)]) }() // let the frames be freed
	for len(bufs) > 0 {
		w.iov, w.n, w.errno = w.iov[:0], 0, 0
		total := 0
		chunk := bufs[:min(len(bufs), maxIOV)]
		for _, b := range chunk {
			if len(b) > 0 {
				v := syscall.Iovec{Base: &b[0]}
				v.SetLen(len(b))
				w.iov = append(w.iov, v)
				total += len(b)
			}
		}
		if total == 0 {
			bufs = bufs[len(chunk):]
			continue
		}
		c.h.stats.writes.Add(1)
		if err := c.raw.Write(w.fn); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return bufs, nil // a deadline left over: drain sets its own
			}
			return bufs, fmt.Errorf("chat: write: %w", err)
		}
		switch {
		case w.errno == syscall.EAGAIN:
			return bufs, nil
		case w.errno != 0:
			return bufs, fmt.Errorf("chat: writev: %w", w.errno)
		}
		bufs = consume(bufs, w.n)
		if w.n < total {
			return bufs, nil
		}
	}
	return nil, nil
}

// consume drops the first n bytes of bufs.
func consume(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs[0] = nil
		bufs = bufs[1:]
	}
	if n > 0 {
		bufs[0] = bufs[0][n:]
	}
	return bufs
}
