package main

import (
	"context"
	"path/filepath"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/media/record"
	"onair/rooms"
	"onair/storage"
)

// newRecorder builds the recorder and the ledger through which the nodes share its
// recordings: each one owned by the node recording it, and completed by another from what
// reached the store when that node is lost.
func (a *app) newRecorder(db *mongo.Database, store storage.Store) error {
	var err error
	a.ledger, err = rooms.NewRecordingLedger(rooms.RecordingLedgerConfig{
		DB: db, Cluster: a.cluster, AdoptAfter: a.cfg.Recordings.AdoptAfter, Logger: a.log,
	})
	if err != nil {
		return err
	}
	a.recorder, err = record.New(record.Config{
		Logger: a.log, Store: store, Dir: runsDir(a.cfg),
		MaxDisk: a.cfg.Recordings.SpoolMaxDisk, Recorded: a.recorded, Ledger: recordLedger{a.ledger}, Failed: a.recordingFailed,
		// Twice per grace period: a dead node's recordings are adopted within 1.5 of it.
		AdoptEvery: a.cfg.Recordings.AdoptAfter / 2,
	})
	return err
}

// runsDir holds the runs' logs: HLS writes them, the recorder uploads and recovers them.
func runsDir(cfg config) string { return filepath.Join(cfg.Data.Dir, "runs") }

// recordLedger is rooms' ledger as media/record sees it.
type recordLedger struct{ l *rooms.RecordingLedger }

var _ record.Ledger = recordLedger{}

func (r recordLedger) Begin(ctx context.Context, rec record.Recording) error {
	return r.l.Begin(ctx, rooms.LedgerRecording{
		Key: rec.Key, RoomID: rec.RoomID, Slug: rec.StreamName, RunID: rec.StreamID, Started: rec.StartedAt,
		ContentType: rec.ContentType, InitSize: rec.InitSize, VideoCodec: rec.VideoCodec, AudioCodec: rec.AudioCodec,
		Width: rec.Width, Height: rec.Height,
	})
}

func (r recordLedger) Stored(ctx context.Context, key string, c record.StoredChunk) error {
	return r.l.Stored(ctx, key, rooms.LedgerChunk{N: c.N, Start: c.Start, Size: c.Size, Segments: ledgerSegments(c.Segments)})
}

func (r recordLedger) Done(ctx context.Context, key string) error { return r.l.Done(ctx, key) }

func (r recordLedger) Resume(ctx context.Context, key string) (bool, error) {
	return r.l.Resume(ctx, key)
}

func (r recordLedger) Known(ctx context.Context, key string) (bool, error) {
	return r.l.Known(ctx, key)
}

func (r recordLedger) Orphans(ctx context.Context, inHand func(string) bool) ([]record.Orphan, error) {
	orphans, err := r.l.Orphans(ctx, inHand)
	out := make([]record.Orphan, len(orphans))
	for i, o := range orphans {
		l := o.Recording
		rec := record.Recording{
			StreamName: l.Slug, StreamID: l.RunID, RoomID: l.RoomID, Key: l.Key, ContentType: l.ContentType,
			InitSize: l.InitSize, VideoCodec: l.VideoCodec, AudioCodec: l.AudioCodec, Width: l.Width, Height: l.Height,
			StartedAt: l.Started,
		}
		var chunks []record.StoredChunk
		for _, c := range o.Chunks {
			sc := record.StoredChunk{N: c.N, Start: c.Start, Size: c.Size}
			for _, f := range c.Segments {
				sc.Segments = append(sc.Segments, record.Segment{Offset: f.Offset, Size: f.Size, Start: f.Start, Duration: f.Duration, Key: f.Key})
			}
			chunks = append(chunks, sc)
		}
		out[i] = record.Orphan{Recording: rec, Chunks: chunks, Empty: o.Empty}
	}
	return out, err
}

// ledgerSegments are a chunk's segments as the ledger keeps them, each with its offset and
// start, so that a chunk's document stands on its own.
func ledgerSegments(segs []record.Segment) []rooms.RecordingFragment {
	out := make([]rooms.RecordingFragment, len(segs))
	for i, s := range segs {
		out[i] = rooms.RecordingFragment{Offset: s.Offset, Size: s.Size, Start: s.Start, Duration: s.Duration, Key: s.Key}
	}
	return out
}

// replaySegments are a recording's segments as its broadcast keeps them: each starts where
// the one before ends, so sizes and durations are enough.
func replaySegments(segs []record.Segment) []rooms.RecordingSegment {
	out := make([]rooms.RecordingSegment, len(segs))
	for i, s := range segs {
		out[i] = rooms.RecordingSegment{Size: s.Size, Duration: s.Duration, Key: s.Key}
	}
	return out
}
