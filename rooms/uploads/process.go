package uploads

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms"
	"onair/rooms/cluster"
)

// leaseKind is the kind of the leases by which one node processes an upload.
const leaseKind = "upload"

// maxAttempts bounds how often processing an upload is retried after failures that were
// not the file's fault (the store unreachable) before it is given up as failed.
const maxAttempts = 5

// Run processes completed uploads, one at a time on this node (a remux reads and writes
// the whole file), and runs the janitor, until ctx ends.
func (s *Service) Run(ctx context.Context) {
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	janitor := time.NewTicker(s.cfg.JanitorInterval)
	defer janitor.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-janitor.C:
			if err := s.Janitor(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("upload janitor", "err", err)
			}
			continue
		case <-poll.C:
		case <-s.kick:
		}
		if err := s.processPending(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("processing uploads", "err", err)
		}
	}
}

// processPending processes the uploads waiting for it that no live node holds.
func (s *Service) processPending(ctx context.Context) error {
	octx, cancel := s.op(ctx)
	cur, err := s.uploads.Find(octx, bson.D{{Key: "state", Value: StateProcessing}},
		options.Find().SetSort(bson.D{{Key: "updated", Value: 1}}).SetLimit(20))
	var docs []doc
	if err == nil {
		err = cur.All(octx, &docs)
	}
	cancel()
	if err != nil {
		return dbError("find uploads to process", err)
	}
	for i := range docs {
		if ctx.Err() != nil {
			return nil
		}
		s.processOne(ctx, &docs[i])
	}
	return nil
}

// processOne takes the upload's lease (from a dead node too: its work starts over) and
// processes it.
func (s *Service) processOne(ctx context.Context, d *doc) {
	lease, err := s.cfg.Cluster.Acquire(ctx, leaseKind, "upload/"+d.ID.Hex(), cluster.IfDead)
	if errors.Is(err, cluster.ErrHeld) {
		return // a live node processes it
	}
	if err != nil {
		s.log.Warn("upload lease not taken", "upload_id", d.ID.Hex(), "err", err)
		return
	}
	log := s.log.With("upload_id", d.ID.Hex(), "room_id", d.RoomID)
	state, reason, bid, err := s.process(ctx, d)
	if err != nil {
		d.Attempts++
		set := bson.D{{Key: "attempts", Value: d.Attempts}}
		if d.Attempts >= maxAttempts {
			state, reason = StateFailed, "processing failed: try again later"
			log.Error("upload processing given up", "attempts", d.Attempts, "err", err)
		} else {
			log.Warn("upload processing failed, to be retried", "attempts", d.Attempts, "err", err)
		}
		if state != "" {
			set = append(set, bson.E{Key: "state", Value: state}, bson.E{Key: "reason", Value: reason})
		}
		if err := s.setState(ctx, d, StateProcessing, set); err != nil {
			log.Warn("upload attempts not written", "err", err)
		}
		if state == "" {
			if err := s.cfg.Cluster.Release(ctx, lease); err != nil {
				log.Warn("upload lease not released", "err", err)
			}
			return
		}
	} else {
		set := bson.D{{Key: "state", Value: state}, {Key: "reason", Value: reason}, {Key: "broadcast_id", Value: bid}}
		if err := s.setState(ctx, d, StateProcessing, set); err != nil {
			log.Warn("upload outcome not written: processed again later", "err", err)
			_ = s.cfg.Cluster.Release(ctx, lease)
			return
		}
		log.Info("upload processed", "state", state, "reason", reason, "broadcast_id", bid)
	}
	s.cleanup(ctx, d)
	if err := s.cfg.Cluster.Finish(ctx, lease); err != nil {
		log.Warn("upload lease not finished", "err", err)
	}
}

// process checks and remuxes the file and adds its broadcast. It returns the upload's
// final state, or an error when it should be tried again.
func (s *Service) process(ctx context.Context, d *doc) (state, reason, broadcastID string, err error) {
	room, err := s.cfg.Rooms.RoomByID(ctx, d.RoomID)
	if errors.Is(err, rooms.ErrNotFound) {
		return StateFailed, "the room was deleted", "", nil
	}
	if err != nil {
		return "", "", "", err
	}
	dst, err := d.recordingKey()
	if err != nil {
		return "", "", "", err
	}
	prefix := path.Dir(dst) + "/"
	// A node that died half-way left a partial recording: start over.
	if err := s.abortUploads(ctx, prefix); err != nil {
		return "", "", "", err
	}
	p, refusal, err := s.cfg.Processor.Process(ctx, d.Key, d.Size, dst)
	if err != nil {
		return "", "", "", fmt.Errorf("process upload %s: %w", d.ID.Hex(), err)
	}
	if refusal != "" {
		return StateRefused, refusal, "", nil
	}
	rec := rooms.Recording{
		Status: rooms.RecordingReady, Key: dst, Prefix: prefix, ContentType: "video/mp4", Size: p.Size, InitSize: p.InitSize,
		DurationMS: p.Duration.Milliseconds(), Segments: p.Segments, Completed: s.now(),
	}
	b, err := s.cfg.Rooms.AddUploadedBroadcast(ctx, rooms.UploadedBroadcast{RoomID: room.ID, RunID: d.runID(), Title: d.Title,
		Started: d.Created, Codecs: p.Codecs, Resolution: p.Resolution, Recording: rec})
	if errors.Is(err, rooms.ErrNotFound) {
		if derr := s.cfg.Store.DeletePrefix(ctx, prefix); derr != nil {
			return "", "", "", derr
		}
		return StateFailed, "the room was deleted", "", nil
	}
	if err != nil {
		return "", "", "", err
	}
	return StateReady, "", b.ID, nil
}

// abortUploads aborts the multipart uploads under prefix.
func (s *Service) abortUploads(ctx context.Context, prefix string) error {
	ups, err := s.cfg.Store.ListUploads(ctx, prefix)
	if err != nil {
		return fmt.Errorf("list uploads under %s: %w", prefix, err)
	}
	for _, u := range ups {
		if err := s.cfg.Store.AbortUpload(ctx, u.Key, u.UploadID); err != nil {
			return fmt.Errorf("abort upload of %s: %w", u.Key, err)
		}
	}
	return nil
}

// Janitor expires uploads left unfinished past their TTL (their parts deleted), deletes
// what finished uploads left in the store, and aborts multipart uploads under Prefix that
// no upload accounts for.
func (s *Service) Janitor(ctx context.Context) error {
	now := s.now()
	octx, cancel := s.op(ctx)
	cur, err := s.uploads.Find(octx, bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "state", Value: StateUploading}, {Key: "expires", Value: bson.D{{Key: "$lt", Value: now}}}},
		bson.D{{Key: "state", Value: bson.D{{Key: "$nin", Value: unfinishedStates}}}, {Key: "cleaned", Value: false}},
	}}}, options.Find().SetLimit(200))
	var docs []doc
	if err == nil {
		err = cur.All(octx, &docs)
	}
	cancel()
	if err != nil {
		return dbError("find uploads to clean up", err)
	}
	for i := range docs {
		d := &docs[i]
		if d.State == StateUploading {
			if err := s.setState(ctx, d, StateUploading, bson.D{{Key: "state", Value: StateExpired},
				{Key: "reason", Value: "not completed in time"}}); err != nil {
				continue
			}
			s.log.Info("upload expired", "upload_id", d.ID.Hex(), "room_id", d.RoomID)
		}
		s.cleanup(ctx, d)
	}
	return s.abortStrays(ctx, now)
}

var unfinishedStates = bson.A{StateUploading, StateProcessing}

// abortStrays aborts multipart uploads under Prefix older than the TTL whose upload is not
// uploading any more (or was never recorded: the node died between the two writes).
func (s *Service) abortStrays(ctx context.Context, now time.Time) error {
	ups, err := s.cfg.Store.ListUploads(ctx, Prefix)
	if err != nil {
		return fmt.Errorf("list uploads under %s: %w", Prefix, err)
	}
	for _, u := range ups {
		if now.Sub(u.Initiated) < s.cfg.TTL {
			continue
		}
		octx, cancel := s.op(ctx)
		n, err := s.uploads.CountDocuments(octx, bson.D{{Key: "store_upload", Value: u.UploadID}, {Key: "state", Value: StateUploading}})
		cancel()
		if err != nil {
			return dbError("look up a stray upload", err)
		}
		if n > 0 {
			continue
		}
		if err := s.cfg.Store.AbortUpload(ctx, u.Key, u.UploadID); err != nil {
			return fmt.Errorf("abort stray upload of %s: %w", u.Key, err)
		}
		s.log.Info("stray multipart upload aborted", "key", u.Key)
	}
	return nil
}
