package rooms

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// What the media hub asks of rooms and what rooms asks of it, in rooms' own words: rooms
// does not import media. cmd/onair adapts these to the hub's interfaces (its
// media.KeyResolver, media.StreamClaims and media.Output) and translates the sentinels
// below to media's.

// StreamRoute is what a stream key publishes to (ResolveKey).
type StreamRoute struct {
	// Name is the stream's public name (Room.StreamName): the slug of a public room, the
	// playback id of any other.
	Name string
	// RoomID is the id of the room whose key it is.
	RoomID string
	// Record is the room's recording setting.
	Record bool
	// MaxLadderKbps is the room's cap on a multitrack publish (Room.MaxLadderKbps).
	MaxLadderKbps int
}

// Errors of the stream wiring; cmd/onair reports them to the hub as media's errors of the
// same words.
var (
	// ErrUnknownKey: the stream key publishes nothing (no room has it, or its room may not
	// publish).
	ErrUnknownKey = errors.New("unknown stream key")
	// ErrStreamBusy: another node's publisher holds the stream (Claim).
	ErrStreamBusy = errors.New("stream is already being published")
	// ErrStopped is wrapped by every reason rooms gives a StreamStopper.
	ErrStopped = errors.New("stream stopped")
)

// Why rooms ends a live publish: a deleted room, a rotated key (the streamer reconnects
// with the new one), a new stream name, a disabled owner.
var (
	errRoomDeleted       = fmt.Errorf("%w: room deleted", ErrStopped)
	errKeyRotated        = fmt.Errorf("%w: stream key rotated", ErrStopped)
	errVisibilityChanged = fmt.Errorf("%w: the room's visibility changed the stream's name", ErrStopped)
	errOwnerDisabled     = fmt.Errorf("%w: the room's owner was disabled", ErrStopped)
)

// StreamStopper ends a live publish.
type StreamStopper interface {
	// Stop ends the stream called name, if it is live, and reports whether it was. reason
	// wraps ErrStopped.
	Stop(name string, reason error) bool
}

// StreamStopperFunc adapts a function to StreamStopper, e.g. to break the cycle between
// the hub (whose outputs include the Service's wiring) and the Service (which stops the
// hub's streams).
type StreamStopperFunc func(name string, reason error) bool

// Stop implements StreamStopper.
func (f StreamStopperFunc) Stop(name string, reason error) bool { return f(name, reason) }

// StreamStart describes a stream that started publishing to a room (StartBroadcast).
type StreamStart struct {
	RoomID string // StreamRoute.RoomID of the key it was published with
	Name   string // StreamRoute.Name
	RunID  string // the media stream's id, also in its HLS URLs
	Codecs Codecs
	// Resolution is the video's size (zero without video).
	Resolution Resolution
}

// LiveStream is the running media stream of a broadcast.
type LiveStream interface {
	// Done is closed when the publisher left or was stopped.
	Done() <-chan struct{}
	// Err is why the stream ended, once Done is closed: nil when its publisher left.
	Err() error
	// Bytes counts the media bytes received so far.
	Bytes() int64
}

// KeyID is a short fingerprint of a stream key, so logs can tell keys apart without
// holding anything that would let a reader publish. It is media.KeyID's fingerprint, so
// that the logs of both name a key alike (cmd/onair's tests check it).
func KeyID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "key-" + hex.EncodeToString(sum[:4])
}
