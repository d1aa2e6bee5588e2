//go:build !linux

package chat

import (
	"errors"
	"net"
	"os"
	"time"
)

// flushStall is how long a flusher waits for a socket's TCP buffer before handing the
// rest of the write to a goroutine of the socket's own.
const flushStall = 2 * time.Millisecond

// frameWriter writes sockets' queues for one flusher through net.Conn with a short write
// deadline: where writev(2) cannot be called on the raw socket, a stalled write is noticed
// by its deadline instead.
type frameWriter struct{}

func newFrameWriter() *frameWriter { return &frameWriter{} }

// write writes bufs, waiting flushStall at most, and returns what is left (nil when all
// was written). bufs may be changed.
func (*frameWriter) write(c *conn, bufs [][]byte) ([][]byte, error) {
	_ = c.nc.Conn.SetWriteDeadline(time.Now().Add(flushStall))
	nb := net.Buffers(bufs)
	c.h.stats.writes.Add(1)
	_, err := nb.WriteTo(c.nc.Conn)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return nb, nil
	}
	return nil, err
}
