// Package hostile speaks onair's protocols by hand, as the attackers of issue 12 did: a
// websocket that writes frames and reads nothing, RTMP connections that never publish.
// The end-to-end tests and the abuse benchmark share it; it must not import testing,
// which the benchmark's binary does not carry.
package hostile

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// DialWebsocket upgrades wsURL (ws://host/path?query) to a websocket by hand, sending
// header too (an Origin, cookies), and returns the connection with nothing read after the
// response's headers: what the server sends next stays in br and the socket buffers until
// the caller reads it, if ever. A client closing a socket with unread data resets it, and
// the server loses what it had not read yet, so callers that want the server to read
// everything keep the connection open.
func DialWebsocket(d *net.Dialer, wsURL string, header http.Header) (nc net.Conn, br *bufio.Reader, err error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, nil, err
	}
	if nc, err = d.Dial("tcp", u.Host); err != nil {
		return nil, nil, err
	}
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
	br = bufio.NewReader(nc)
	resp, err := func() (*http.Response, error) {
		if err := req.Write(nc); err != nil {
			return nil, err
		}
		return http.ReadResponse(br, req)
	}()
	if err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
		err = fmt.Errorf("websocket upgrade of %s: HTTP %d", wsURL, resp.StatusCode)
	}
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, br, nil
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

// DialFrom connects to addr from the loopback address from: Linux routes all of
// 127.0.0.0/8 to the loopback interface, so one machine can play clients from many
// addresses, as the per-address limits see them.
func DialFrom(addr, from string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return d.Dial("tcp", addr)
}

// RTMPHandshake performs the client side of the plain RTMP handshake.
func RTMPHandshake(c net.Conn) error {
	c1 := make([]byte, 1537)
	c1[0] = 3
	_, _ = rand.Read(c1[9:])
	if _, err := c.Write(c1); err != nil {
		return fmt.Errorf("write C0+C1: %w", err)
	}
	s := make([]byte, 1+1536+1536)
	if _, err := io.ReadFull(c, s); err != nil {
		return fmt.Errorf("read S0+S1+S2: %w", err)
	}
	if _, err := c.Write(s[1 : 1+1536]); err != nil { // C2 echoes S1
		return fmt.Errorf("write C2: %w", err)
	}
	return nil
}

// ChunkSize is RTMP's initial chunk size, which an attacker has no reason to change.
const ChunkSize = 128

// ChunkHeader is a fmt 0 header on chunk stream csid (2-63) for a message of the given
// length and type on message stream 1.
func ChunkHeader(csid, length int, typeID byte) []byte {
	return []byte{byte(csid), 0, 0, 0, byte(length >> 16), byte(length >> 8), byte(length), typeID, 1, 0, 0, 0}
}

// Unfinished is the first n bytes (a multiple of ChunkSize) of a video message of the
// given length on chunk stream csid, with their chunk headers.
func Unfinished(csid, length, n int) []byte {
	out := ChunkHeader(csid, length, 9)
	for i := 0; i < n; i += ChunkSize {
		if i > 0 {
			out = append(out, 0xc0|byte(csid))
		}
		out = append(out, make([]byte, ChunkSize)...)
	}
	return out
}

// UnfinishedUpTo is video messages of the given length on chunk streams 4 and up, none
// finished, whose bodies add up to total bytes (a multiple of ChunkSize): what makes a
// server that buffers messages until they are complete hold total bytes.
func UnfinishedUpTo(length, total int) []byte {
	var out []byte
	for csid := 4; total > 0; csid++ {
		n := min(total, length-ChunkSize)
		out = append(out, Unfinished(csid, length, n)...)
		total -= n
	}
	return out
}
