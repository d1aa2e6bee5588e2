package rooms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// SourceUpload marks a broadcast made from an uploaded video (Broadcast.Source).
const SourceUpload = "upload"

// UploadedBroadcast is a past broadcast made from an uploaded video: never live, its
// recording written by the uploads' processing.
type UploadedBroadcast struct {
	RoomID string
	// RunID names it among the room's broadcasts and in its recording's key.
	RunID      string
	Title      string
	Started    time.Time
	Codecs     Codecs
	Resolution Resolution
	Recording  Recording
}

// CleanBroadcastTitle checks a broadcast's title as the API takes it: trimmed, 1 to 100
// characters, no control characters.
func CleanBroadcastTitle(t string) (string, error) { return cleanTitle(t) }

// AddUploadedBroadcast records an uploaded video as an ended broadcast of its room, with
// its recording ready. Adding the same run again returns the broadcast added first, so
// that processing that stopped half-way may simply run again. ErrNotFound: the room was
// deleted meanwhile.
func (s *Service) AddUploadedBroadcast(ctx context.Context, in UploadedBroadcast) (Broadcast, error) {
	if _, err := s.Playback(ctx); err != nil {
		return Broadcast{}, err
	}
	room, err := s.RoomByID(ctx, in.RoomID)
	if err != nil {
		return Broadcast{}, err
	}
	roomID, _ := bson.ObjectIDFromHex(room.ID)
	var d broadcastDoc
	octx, cancel := s.op(ctx)
	defer cancel()
	err = s.broadcasts.FindOne(octx, bson.D{{Key: "run_id", Value: in.RunID}, {Key: "room_id", Value: roomID}},
		options.FindOne().SetProjection(bson.D{{Key: "recording.segments", Value: 0}})).Decode(&d)
	if err == nil {
		return s.broadcastOf(&d), nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return Broadcast{}, dbError("find uploaded broadcast", err)
	}
	started := in.Started.UTC().Truncate(time.Millisecond)
	ended := started.Add(time.Duration(in.Recording.DurationMS) * time.Millisecond)
	d = broadcastDoc{
		ID: bson.NewObjectID(), RoomID: roomID, RoomSlug: room.Slug, Title: in.Title, Stream: room.StreamName(),
		RunID: in.RunID, Node: s.cfg.Cluster.ID(), Started: started, Ended: &ended, Heartbeat: s.now(),
		Codecs: in.Codecs, Resolution: in.Resolution, Bytes: in.Recording.Size, DurationMS: in.Recording.DurationMS,
		Recording: &in.Recording, Source: SourceUpload,
	}
	if ms := in.Recording.DurationMS; ms > 0 {
		d.Bitrate = in.Recording.Size * 8 * 1000 / ms
	}
	if _, err := s.broadcasts.InsertOne(octx, d); err != nil {
		return Broadcast{}, dbError(fmt.Sprintf("insert uploaded broadcast of room %s", room.ID), err)
	}
	s.log.Info("uploaded broadcast added", "broadcast_id", d.ID.Hex(), "room_id", room.ID, "run_id", in.RunID,
		"bytes", in.Recording.Size, "duration_ms", in.Recording.DurationMS)
	return s.broadcastOf(&d), nil
}
