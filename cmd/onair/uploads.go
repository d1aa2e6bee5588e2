package main

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/media/upload"
	"onair/rooms"
	"onair/rooms/uploads"
	"onair/storage"
)

type uploadsConfig struct {
	// MaxBytes bounds one uploaded file; MaxPending a room's unfinished uploads.
	MaxBytes   int64 `yaml:"max_bytes"`
	MaxPending int   `yaml:"max_pending"`
	// TTL is how long an upload may stay unfinished before it is aborted and its parts
	// deleted; JanitorInterval how often that is looked for.
	TTL             time.Duration `yaml:"ttl"`
	JanitorInterval time.Duration `yaml:"janitor_interval"`
}

func defaultUploadsConfig() uploadsConfig {
	return uploadsConfig{MaxBytes: uploads.DefaultMaxBytes, MaxPending: uploads.DefaultMaxPending, TTL: uploads.DefaultTTL, JanitorInterval: time.Minute}
}

func (c uploadsConfig) validate(bad func(key, format string, a ...any)) {
	if c.MaxBytes < 1<<20 {
		bad("uploads.max_bytes", "must be at least 1048576 bytes, got %d", c.MaxBytes)
	}
	if c.MaxPending < 1 || c.MaxPending > 100 {
		bad("uploads.max_pending", "must be between 1 and 100, got %d", c.MaxPending)
	}
	if c.TTL < time.Second || c.TTL > storage.MaxPresignTTL {
		bad("uploads.ttl", "must be between 1s and %s, got %s", storage.MaxPresignTTL, c.TTL)
	}
	if c.JanitorInterval < 100*time.Millisecond {
		bad("uploads.janitor_interval", "must be at least 100ms, got %s", c.JanitorInterval)
	}
}

// newUploads builds the uploads of past broadcasts (rooms/uploads), which remux with
// media/upload.
func (a *app) newUploads(db *mongo.Database, store storage.Store) error {
	var err error
	a.uploads, err = uploads.New(uploads.Config{
		DB: db, Store: store, Rooms: a.rooms, Cluster: a.cluster, Processor: remuxer{store},
		MaxBytes: a.cfg.Uploads.MaxBytes, MaxPending: a.cfg.Uploads.MaxPending, TTL: a.cfg.Uploads.TTL,
		JanitorInterval: a.cfg.Uploads.JanitorInterval, PollInterval: 2 * time.Second, Logger: a.log,
	})
	return err
}

// remuxer is uploads.Processor by media/upload, reading and writing the object store.
type remuxer struct{ store storage.Store }

func (r remuxer) Process(ctx context.Context, src string, size int64, dst string) (uploads.Processed, string, error) {
	file := upload.StoredFile{Store: r.store, Key: src, Len: size}
	m, err := upload.Probe(ctx, file)
	if reason, ok := upload.IsRefused(err); ok {
		return uploads.Processed{}, reason, nil
	}
	if err != nil {
		return uploads.Processed{}, "", err
	}
	id, err := r.store.CreateUpload(ctx, dst, "video/mp4")
	if err != nil {
		return uploads.Processed{}, "", fmt.Errorf("start recording %s: %w", dst, err)
	}
	sink := &upload.MultipartSink{Store: r.store, Key: dst, UploadID: id}
	res, err := upload.Remux(ctx, m, file, sink)
	if err == nil {
		err = sink.Close(ctx)
	}
	if err != nil {
		_ = r.store.AbortUpload(context.WithoutCancel(ctx), dst, id)
		if reason, ok := upload.IsRefused(err); ok {
			return uploads.Processed{}, reason, nil
		}
		return uploads.Processed{}, "", err
	}
	p := uploads.Processed{InitSize: res.InitSize, Size: res.Size, Duration: res.Duration,
		Codecs:     rooms.Codecs{Video: res.VideoCodec, Audio: res.AudioCodec},
		Resolution: rooms.Resolution{Width: res.Width, Height: res.Height}}
	for _, s := range res.Segments {
		p.Segments = append(p.Segments, rooms.RecordingSegment{Size: s.Size, Duration: s.Duration, Key: s.Key})
	}
	return p, "", nil
}
