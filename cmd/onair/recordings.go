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
		Logger: a.log, Store: store, Dir: filepath.Join(a.cfg.Data.Dir, "recordings"),
		MaxDisk: a.cfg.Recordings.SpoolMaxDisk, Recorded: a.recorded, Ledger: recordLedger{a.ledger}, Failed: a.recordingFailed,
		// Twice per grace period: a dead node's recordings are adopted within 1.5 of it.
		AdoptEvery: a.cfg.Recordings.AdoptAfter / 2,
	})
	return err
}

// recordLedger is rooms' ledger as media/record sees it.
type recordLedger struct{ l *rooms.RecordingLedger }

var _ record.Ledger = recordLedger{}

func (r recordLedger) Begin(ctx context.Context, rec record.Recording) error {
	return r.l.Begin(ctx, rooms.LedgerRecording{
		Key: rec.Key, RoomID: rec.Owner, Slug: rec.StreamName, RunID: rec.StreamID, Started: rec.StartedAt,
		ContentType: rec.ContentType, InitSize: rec.InitSize, VideoCodec: rec.VideoCodec, AudioCodec: rec.AudioCodec,
		Width: rec.Width, Height: rec.Height,
	})
}

func (r recordLedger) Upload(ctx context.Context, key, uploadID string) error {
	return r.l.Upload(ctx, key, uploadID)
}

func (r recordLedger) Stored(ctx context.Context, key string, first int, frags []record.Fragment) error {
	return r.l.Stored(ctx, key, first, roomsFragments(frags))
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
			StreamName: l.Slug, StreamID: l.RunID, Owner: l.RoomID, Key: l.Key, ContentType: l.ContentType,
			InitSize: l.InitSize, VideoCodec: l.VideoCodec, AudioCodec: l.AudioCodec, Width: l.Width, Height: l.Height,
			StartedAt: l.Started,
		}
		for _, f := range l.Fragments {
			rec.Fragments = append(rec.Fragments, record.Fragment{Offset: f.Offset, Size: f.Size, Start: f.Start, Duration: f.Duration, Key: f.Key})
		}
		out[i] = record.Orphan{Recording: rec, UploadID: l.UploadID, Empty: o.Empty}
	}
	return out, err
}

func roomsFragments(frags []record.Fragment) []rooms.RecordingFragment {
	out := make([]rooms.RecordingFragment, len(frags))
	for i, f := range frags {
		out[i] = rooms.RecordingFragment{Offset: f.Offset, Size: f.Size, Start: f.Start, Duration: f.Duration, Key: f.Key}
	}
	return out
}
