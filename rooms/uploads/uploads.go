// Package uploads makes past broadcasts of uploaded videos. A room's owner (or an admin)
// starts an upload; the browser PUTs its parts straight to the object store through
// presigned URLs, asks which parts the store holds to resume, and completes it; then one
// node, holding the upload's lease, checks the file and remuxes it into a recording
// (Processor), and the upload becomes an ended broadcast of the room. Uploads started and
// never completed are aborted after a TTL, their parts deleted.
//
// Collection:
//
//	uploads {_id, room_id, user_id, filename, content_type, title, size, part_size, key,
//	         store_upload (the store's multipart id), state, reason, attempts, broadcast_id,
//	         created, expires, updated, cleaned}
//
// States: uploading → processing → ready | refused | failed; uploading → aborted | expired.
// A document has one writer at a time: the API while uploading (complete moves it on
// with a conditional update), the lease holder while processing, the janitor after.
package uploads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/rooms"
	"onair/rooms/cluster"
	"onair/rooms/mongodb"
	"onair/storage"
)

// Upload states.
const (
	StateUploading  = "uploading"
	StateProcessing = "processing"
	StateReady      = "ready"
	StateRefused    = "refused"
	StateFailed     = "failed"
	StateAborted    = "aborted"
	StateExpired    = "expired"
)

// Defaults of Config.
const (
	DefaultMaxBytes   = 10 << 30
	DefaultMaxPending = 3
	DefaultTTL        = 24 * time.Hour
	// DefaultPartSize is the part size for files up to 10 000 parts of it (80 GiB); larger
	// files get larger parts.
	DefaultPartSize = 8 << 20
)

// Prefix holds every upload's object: uploads/<room id>/<upload id>/source.
const Prefix = "uploads/"

// ErrTooLarge: the file is larger than an upload may be.
var ErrTooLarge = errors.New("upload too large")

// Processor checks an uploaded file and writes its recording.
type Processor interface {
	// Process reads the object src (size bytes) and writes the recording to dst. A file
	// that is not a video onair takes is refused: refusal says why, for its uploader, and
	// err is nil. err is for failures worth retrying (the store unreachable).
	Process(ctx context.Context, src string, size int64, dst string) (p Processed, refusal string, err error)
}

// Processed is the recording Process wrote.
type Processed struct {
	InitSize, Size int64
	Duration       time.Duration
	Segments       []rooms.RecordingSegment
	Codecs         rooms.Codecs
	Resolution     rooms.Resolution
}

// Rooms is what uploads needs of rooms.
type Rooms interface {
	RoomByID(ctx context.Context, id string) (rooms.Room, error)
	AddUploadedBroadcast(ctx context.Context, in rooms.UploadedBroadcast) (rooms.Broadcast, error)
}

// Config configures New. DB, Store, Rooms, Cluster and Processor are required.
type Config struct {
	DB        *mongo.Database
	Store     storage.Store
	Rooms     Rooms
	Cluster   *cluster.Registry
	Processor Processor
	// MaxBytes bounds one upload (default 10 GiB).
	MaxBytes int64
	// MaxPending bounds a room's unfinished uploads (uploading or processing; default 3);
	// together they may hold at most MaxPending × MaxBytes.
	MaxPending int
	// TTL is how long an upload may stay unfinished before the janitor aborts it and
	// deletes its parts (default 24 h); its part URLs are valid as long.
	TTL time.Duration
	// PartSize is the size of the parts browsers upload (default 8 MiB, at least 5 MiB).
	PartSize int64
	// PollInterval is how often processing uploads are looked for (default 5 s), and
	// JanitorInterval how often abandoned ones are (default 1 min).
	PollInterval, JanitorInterval time.Duration
	// OpTimeout bounds each MongoDB operation (default 3 s).
	OpTimeout time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
}

// Service is the uploads of every room.
type Service struct {
	cfg     Config
	log     *slog.Logger
	uploads *mongo.Collection
	kick    chan struct{}
}

// New builds a Service; Run processes and cleans up.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Store == nil || cfg.Rooms == nil || cfg.Cluster == nil || cfg.Processor == nil {
		return nil, errors.New("uploads: DB, Store, Rooms, Cluster and Processor are required")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	cfg.TTL = min(cfg.TTL, storage.MaxPresignTTL)
	if cfg.PartSize < storage.MinPartSize {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.JanitorInterval <= 0 {
		cfg.JanitorInterval = time.Minute
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("component", "uploads"), uploads: cfg.DB.Collection("uploads"),
		kick: make(chan struct{}, 1)}, nil
}

// EnsureIndexes creates the collection's indexes.
func (s *Service) EnsureIndexes(ctx context.Context) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	err := mongodb.CreateIndexes(ctx, s.uploads,
		mongodb.Index{Name: "room_id_1_state_1", Keys: mongodb.Keys("room_id", 1, "state", 1)},
		mongodb.Index{Name: "state_1_expires_1", Keys: mongodb.Keys("state", 1, "expires", 1)})
	if err != nil {
		return fmt.Errorf("uploads: create indexes: %w", err)
	}
	return nil
}

type doc struct {
	ID          bson.ObjectID `bson:"_id"`
	RoomID      string        `bson:"room_id"`
	UserID      string        `bson:"user_id"`
	Filename    string        `bson:"filename"`
	ContentType string        `bson:"content_type"`
	Title       string        `bson:"title"`
	Size        int64         `bson:"size"`
	PartSize    int64         `bson:"part_size"`
	Key         string        `bson:"key"`
	StoreUpload string        `bson:"store_upload"`
	State       string        `bson:"state"`
	Reason      string        `bson:"reason,omitempty"`
	Attempts    int           `bson:"attempts"`
	BroadcastID string        `bson:"broadcast_id,omitempty"`
	Created     time.Time     `bson:"created"`
	Expires     time.Time     `bson:"expires"`
	Updated     time.Time     `bson:"updated"`
	Cleaned     bool          `bson:"cleaned"`
}

func (d *doc) parts() int { return int((d.Size + d.PartSize - 1) / d.PartSize) }

// partSize of part n (1-based): every part is PartSize but the last.
func (d *doc) partSize(n int) int64 {
	if n < d.parts() {
		return d.PartSize
	}
	return d.Size - int64(n-1)*d.PartSize
}

// runID names the upload's broadcast and its recording's folder.
func (d *doc) runID() string { return "upload-" + d.ID.Hex() }

func (d *doc) recordingKey() (string, error) {
	return storage.RecordingKey(d.RoomID, d.runID(), "recording.mp4")
}

// View is an upload as the API shows it.
type View struct {
	ID          string    `json:"id"`
	Filename    string    `json:"filename"`
	ContentType string    `json:"content_type"`
	Title       string    `json:"title"`
	Size        int64     `json:"size"`
	PartSize    int64     `json:"part_size"`
	PartCount   int       `json:"part_count"`
	State       string    `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	BroadcastID string    `json:"broadcast_id,omitempty"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires"`
	// Uploaded are the parts the store holds (while uploading), by number.
	Uploaded []int `json:"uploaded,omitempty"`
	// Parts are the URLs to PUT the missing parts to (while uploading).
	Parts []PartURL `json:"parts,omitempty"`
}

// PartURL is where to PUT one part, and its exact size.
type PartURL struct {
	Number int    `json:"number"`
	Size   int64  `json:"size"`
	URL    string `json:"url"`
}

func (d *doc) view() View {
	return View{ID: d.ID.Hex(), Filename: d.Filename, ContentType: d.ContentType, Title: d.Title, Size: d.Size,
		PartSize: d.PartSize, PartCount: d.parts(), State: d.State, Reason: d.Reason, BroadcastID: d.BroadcastID,
		Created: d.Created, Expires: d.Expires}
}

func (s *Service) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.OpTimeout)
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

func dbError(op string, err error) error { return mongodb.Wrap(op, err, rooms.ErrUnavailable) }

// find loads an upload of room.
func (s *Service) find(ctx context.Context, room rooms.Room, id string) (doc, error) {
	var d doc
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return d, fmt.Errorf("upload %q: %w", id, rooms.ErrNotFound)
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	err = s.uploads.FindOne(octx, bson.D{{Key: "_id", Value: oid}, {Key: "room_id", Value: room.ID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, fmt.Errorf("upload %s of room %s: %w", id, room.ID, rooms.ErrNotFound)
	}
	if err != nil {
		return d, dbError("find upload "+id, err)
	}
	return d, nil
}

// allowed checks that actor may upload to room: its owner or an admin.
func allowed(actor rooms.User, room rooms.Room) error {
	if !room.CanEdit(actor) {
		return fmt.Errorf("upload to room %s: %w", room.ID, rooms.ErrForbidden)
	}
	return nil
}

// videoTypes are the file types taken, by extension.
var videoTypes = map[string]string{".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime"}

// cleanFilename keeps the base name of what the browser sent, and checks it names a video.
func cleanFilename(name, contentType string) (string, string, error) {
	name = strings.TrimSpace(path.Base(strings.ReplaceAll(name, `\`, "/")))
	if name == "" || name == "." || name == "/" || len(name) > 255 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", "", &rooms.ValidationError{Field: "filename", Message: "must be a file name of at most 255 bytes"}
	}
	ct, ok := videoTypes[strings.ToLower(path.Ext(name))]
	if !ok {
		return "", "", &rooms.ValidationError{Field: "filename", Message: "must be an MP4 or MOV video (.mp4, .m4v or .mov)"}
	}
	switch contentType {
	case "", "application/octet-stream", "video/mp4", "video/quicktime", "video/x-m4v":
	default:
		return "", "", &rooms.ValidationError{Field: "content_type", Message: "must be video/mp4 or video/quicktime"}
	}
	return name, ct, nil
}
