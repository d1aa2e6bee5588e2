package main

import (
	"context"
	"errors"
	"time"

	"onair/media"
	"onair/rooms"
)

// roomStreams wires rooms to the media hub: it answers the hub's questions (which stream
// a key publishes to, whether this node may take a stream) and tells rooms of every
// stream that starts, translating between the two packages' types and sentinels (rooms
// does not import media).
type roomStreams struct{ rooms *rooms.Service }

var (
	_ media.KeyResolver  = roomStreams{}
	_ media.StreamClaims = roomStreams{}
	_ media.Output       = roomStreams{}
)

func (r roomStreams) ResolveKey(ctx context.Context, key string) (media.Route, error) {
	route, err := r.rooms.ResolveKey(ctx, key)
	if err != nil {
		return media.Route{}, mediaError(err, rooms.ErrUnknownKey, media.ErrUnknownKey)
	}
	return media.Route{Name: route.Name, RoomID: route.RoomID, Record: route.Record}, nil
}

func (r roomStreams) Claim(ctx context.Context, name string, quiet time.Duration) (media.Claim, error) {
	c, err := r.rooms.Claim(ctx, name, quiet)
	if err != nil {
		return nil, mediaError(err, rooms.ErrStreamBusy, media.ErrStreamBusy)
	}
	return c, nil
}

// OpenSink records the broadcast of a room's stream; it needs no sink, only the stream's
// end and byte count.
func (r roomStreams) OpenSink(st *media.Stream) (media.Sink, error) {
	if st.Rendition() != "" {
		return nil, nil // a further rendition of a broadcast the main one started
	}
	start := rooms.StreamStart{
		RoomID: st.Route().RoomID, Name: st.Name(), RunID: st.ID(),
		Codecs: rooms.Codecs{Video: string(st.VideoCodec()), Audio: string(st.AudioCodec())},
	}
	if v := st.Tracks().Video; v != nil {
		start.Resolution = rooms.Resolution{Width: v.Width, Height: v.Height}
	}
	r.rooms.StartBroadcast(start, liveStream{st})
	return nil, nil
}

// liveStream is a media stream as rooms.LiveStream.
type liveStream struct{ *media.Stream }

func (s liveStream) Bytes() int64 { return s.Stats().Bytes }

// stopStream is rooms' StreamStopper: the hub's Stop, with rooms' reason as media's.
func stopStream(hub *media.Hub, name string, reason error) bool {
	return hub.Stop(name, mediaError(reason, rooms.ErrStopped, media.ErrStopped))
}

// mediaError gives err, when it wraps the rooms sentinel ours, media's sentinel of the
// same meaning too, keeping its words: the hub and the RTMP server test for theirs.
func mediaError(err, ours, theirs error) error {
	if !errors.Is(err, ours) {
		return err
	}
	return bothErrors{err, theirs}
}

type bothErrors struct{ err, also error }

func (e bothErrors) Error() string   { return e.err.Error() }
func (e bothErrors) Unwrap() []error { return []error{e.err, e.also} }
