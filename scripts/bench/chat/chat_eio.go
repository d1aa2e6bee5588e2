package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Engine.IO packet types.
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
)

// Socket.IO packet types.
const (
	sioConnect      = '0'
	sioDisconnect   = '1'
	sioEvent        = '2'
	sioAck          = '3'
	sioConnectError = '4'
)

// eioHandshake is the data of the Engine.IO open packet.
type eioHandshake struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"` // ms
	PingTimeout  int      `json:"pingTimeout"`  // ms
	MaxPayload   int      `json:"maxPayload"`
}

// sioPacket is a decoded Socket.IO packet.
type sioPacket struct {
	Type      byte
	Namespace string // "/" unless given
	ID        int    // acknowledgement id, -1 when there is none
	Data      []byte // JSON, possibly empty
}

// parseEIO splits an Engine.IO packet into its type and data.
func parseEIO(frame []byte) (byte, []byte, error) {
	if len(frame) == 0 {
		return 0, nil, errors.New("engine.io: empty packet")
	}
	if frame[0] < eioOpen || frame[0] > '6' {
		return 0, nil, fmt.Errorf("engine.io: unknown packet type %q", frame[0])
	}
	return frame[0], frame[1:], nil
}

// parseEIOOpen decodes the open packet's handshake.
func parseEIOOpen(frame []byte) (eioHandshake, error) {
	typ, data, err := parseEIO(frame)
	if err != nil {
		return eioHandshake{}, err
	}
	if typ != eioOpen {
		return eioHandshake{}, fmt.Errorf("engine.io: expected the open packet, got %q", frame)
	}
	var h eioHandshake
	if err := json.Unmarshal(data, &h); err != nil {
		return eioHandshake{}, fmt.Errorf("engine.io: open packet: %w", err)
	}
	if h.SID == "" || h.PingInterval <= 0 {
		return eioHandshake{}, fmt.Errorf("engine.io: open packet without sid or pingInterval: %s", data)
	}
	return h, nil
}

// parseSIO decodes the Socket.IO packet in the data of an Engine.IO message.
func parseSIO(data []byte) (sioPacket, error) {
	if len(data) == 0 {
		return sioPacket{}, errors.New("socket.io: empty packet")
	}
	p := sioPacket{Type: data[0], Namespace: "/", ID: -1}
	switch p.Type {
	case sioConnect, sioDisconnect, sioEvent, sioAck, sioConnectError:
	case '5', '6':
		return sioPacket{}, errors.New("socket.io: binary packets are not supported")
	default:
		return sioPacket{}, fmt.Errorf("socket.io: unknown packet type %q", p.Type)
	}
	rest := data[1:]
	if len(rest) > 0 && rest[0] == '/' {
		end := -1
		for i, c := range rest {
			if c == ',' {
				end = i
				break
			}
		}
		if end < 0 {
			p.Namespace, rest = string(rest), nil
		} else {
			p.Namespace, rest = string(rest[:end]), rest[end+1:]
		}
	}
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	if digits > 0 {
		id, err := strconv.Atoi(string(rest[:digits]))
		if err != nil {
			return sioPacket{}, fmt.Errorf("socket.io: ack id: %w", err)
		}
		p.ID, rest = id, rest[digits:]
	}
	p.Data = rest
	return p, nil
}

// sioEventFrame encodes an event for the main namespace, with an acknowledgement id when
// id >= 0.
func sioEventFrame(id int, name string, args ...any) ([]byte, error) {
	payload, err := json.Marshal(append([]any{name}, args...))
	if err != nil {
		return nil, fmt.Errorf("socket.io: encode %s: %w", name, err)
	}
	out := []byte{eioMessage, sioEvent}
	if id >= 0 {
		out = strconv.AppendInt(out, int64(id), 10)
	}
	return append(out, payload...), nil
}

// sioEventName returns the name of an event packet (the first element of its array).
func sioEventName(p sioPacket) (string, error) {
	var args []json.RawMessage
	if err := json.Unmarshal(p.Data, &args); err != nil {
		return "", fmt.Errorf("socket.io: event: %w", err)
	}
	if len(args) == 0 {
		return "", errors.New("socket.io: event without a name")
	}
	var name string
	if err := json.Unmarshal(args[0], &name); err != nil {
		return "", fmt.Errorf("socket.io: event name: %w", err)
	}
	return name, nil
}

// Frames the client sends as they are.
const (
	sioConnectFrame = "40" // Engine.IO message, Socket.IO connect to "/"
	eioPongFrame    = "3"
)

// sioAckError returns the "error" of the first argument of an acknowledgement
// ([{"error":"…"}]), or "" for any other answer (the peer's {"ok":true}).
func sioAckError(data []byte) string {
	var args []struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &args) != nil || len(args) == 0 {
		return ""
	}
	return args[0].Error
}
