package testenv

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// RawWebsocket upgrades wsURL (ws://host/path?query) to a websocket by hand, as a hostile
// client would, sending header too (an Origin, cookies), and returns the connection with
// nothing read after the response's headers: what the server sends next stays in br and
// the socket buffers until the test reads it, if ever. The connection is closed when the
// test ends, not before: a client closing a socket with unread data resets it, and the
// server loses what it had not read yet.
func RawWebsocket(t testing.TB, wsURL string, header http.Header) (nc net.Conn, br *bufio.Reader) {
	t.Helper()
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	nc, err = net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{
		"Upgrade":               {"websocket"},
		"Connection":            {"Upgrade"},
		"Sec-Websocket-Key":     {base64.StdEncoding.EncodeToString(key)},
		"Sec-Websocket-Version": {"13"},
	}}
	for k, v := range header {
		req.Header[k] = v
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := req.Write(nc); err != nil {
		t.Fatal(err)
	}
	br = bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("websocket upgrade of %s: HTTP %d", wsURL, resp.StatusCode)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, br
}

// MaskedFrame is a websocket client frame (masked, as RFC 6455 requires of clients) with
// opcode op; fin false makes it a fragment to be continued.
func MaskedFrame(op byte, payload []byte, fin bool) []byte {
	first := op
	if fin {
		first |= 0x80
	}
	var b []byte
	switch n := len(payload); {
	case n < 126:
		b = append(b, first, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, first, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, first, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := [4]byte{0x5a, 0x17, 0xc3, 0x88}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}
