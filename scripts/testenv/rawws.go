package testenv

import (
	"bufio"
	"net"
	"net/http"
	"testing"

	"onair/scripts/hostile"
)

// RawWebsocket upgrades wsURL (ws://host/path?query) to a websocket by hand, as a hostile
// client would (hostile.DialWebsocket), sending header too (an Origin, cookies). The
// connection is closed when the test ends, not before: a client closing a socket with
// unread data resets it, and the server loses what it had not read yet.
func RawWebsocket(t testing.TB, wsURL string, header http.Header) (nc net.Conn, br *bufio.Reader) {
	t.Helper()
	nc, br, err := hostile.DialWebsocket(&net.Dialer{}, wsURL, header)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return nc, br
}
