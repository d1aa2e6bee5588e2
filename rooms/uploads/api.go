package uploads

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/rooms"
	"onair/storage"
)

// NewUpload is what a browser says of the file it is about to upload.
type NewUpload struct {
	Filename    string
	Size        int64
	ContentType string
	Title       string
}

// unfinished are the states that hold storage and count against a room's limit.
var unfinished = bson.D{{Key: "$in", Value: bson.A{StateUploading, StateProcessing}}}

// Create starts an upload to room: it checks the file's name, size and the room's
// unfinished uploads, starts a multipart upload in the store, and returns the upload
// with a URL for each of its parts. Bad input changes nothing.
func (s *Service) Create(ctx context.Context, actor rooms.User, room rooms.Room, in NewUpload) (View, error) {
	if err := allowed(actor, room); err != nil {
		return View{}, err
	}
	name, ct, err := cleanFilename(in.Filename, in.ContentType)
	if err != nil {
		return View{}, err
	}
	if in.Size <= 0 {
		return View{}, &rooms.ValidationError{Field: "size", Message: "must be the file's size in bytes"}
	}
	if in.Size > s.cfg.MaxBytes {
		return View{}, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, in.Size, s.cfg.MaxBytes)
	}
	title := strings.TrimSuffix(name, name[strings.LastIndexByte(name, '.'):])
	if strings.TrimSpace(in.Title) != "" {
		title = in.Title
	}
	if title, err = rooms.CleanBroadcastTitle(title); err != nil {
		return View{}, err
	}
	octx, cancel := s.op(ctx)
	n, err := s.uploads.CountDocuments(octx, bson.D{{Key: "room_id", Value: room.ID}, {Key: "state", Value: unfinished}})
	cancel()
	if err != nil {
		return View{}, dbError("count unfinished uploads", err)
	}
	if n >= int64(s.cfg.MaxPending) {
		return View{}, &rooms.ConflictError{Field: "uploads", Message: fmt.Sprintf(
			"the room has %d unfinished uploads, the most it may have: finish or cancel one first", n)}
	}
	now := s.now()
	d := doc{ID: bson.NewObjectID(), RoomID: room.ID, UserID: actor.ID, Filename: name, ContentType: ct, Title: title,
		Size: in.Size, PartSize: s.cfg.PartSize, State: StateUploading, Created: now, Expires: now.Add(s.cfg.TTL), Updated: now}
	if min := (in.Size + storage.MaxParts - 1) / storage.MaxParts; min > d.PartSize {
		d.PartSize = (min + 1<<20 - 1) &^ (1<<20 - 1) // whole MiB
	}
	d.Key = Prefix + room.ID + "/" + d.ID.Hex() + "/source"
	if d.StoreUpload, err = s.cfg.Store.CreateUpload(ctx, d.Key, ct); err != nil {
		return View{}, fmt.Errorf("start upload of %s: %w: %w", d.Key, rooms.ErrUnavailable, err)
	}
	octx, cancel = s.op(ctx)
	defer cancel()
	if _, err := s.uploads.InsertOne(octx, d); err != nil {
		_ = s.cfg.Store.AbortUpload(context.WithoutCancel(ctx), d.Key, d.StoreUpload)
		return View{}, dbError("insert upload", err)
	}
	s.log.Info("upload started", "upload_id", d.ID.Hex(), "room_id", room.ID, "user_id", actor.ID, "bytes", d.Size, "parts", d.parts())
	v := d.view()
	if v.Parts, err = s.partURLs(ctx, &d, nil); err != nil {
		return View{}, err
	}
	return v, nil
}

// partURLs presigns the parts not in have.
func (s *Service) partURLs(ctx context.Context, d *doc, have map[int]bool) ([]PartURL, error) {
	ttl := d.Expires.Sub(s.now())
	if ttl <= 0 {
		return nil, nil
	}
	var out []PartURL
	for n := 1; n <= d.parts(); n++ {
		if have[n] {
			continue
		}
		size := d.partSize(n)
		u, err := s.cfg.Store.PresignPart(ctx, d.Key, d.StoreUpload, n, size, ttl)
		if err != nil {
			return nil, fmt.Errorf("presign part %d of upload %s: %w", n, d.ID.Hex(), err)
		}
		out = append(out, PartURL{Number: n, Size: size, URL: u})
	}
	return out, nil
}

// storedParts are the parts the store holds of the upload, which is the authority on
// what arrived: numbers whose size is right.
func (s *Service) storedParts(ctx context.Context, d *doc) ([]storage.Part, map[int]bool, error) {
	parts, err := s.cfg.Store.ListParts(ctx, d.Key, d.StoreUpload)
	if err != nil {
		return nil, nil, fmt.Errorf("list parts of upload %s: %w", d.ID.Hex(), err)
	}
	have := map[int]bool{}
	var good []storage.Part
	for _, p := range parts {
		if p.Number >= 1 && p.Number <= d.parts() && p.Size == d.partSize(p.Number) {
			have[p.Number] = true
			good = append(good, p)
		}
	}
	return good, have, nil
}

// Get returns an upload of room; while uploading, with the parts the store holds and
// URLs for the others, so that a browser resumes where it stopped.
func (s *Service) Get(ctx context.Context, actor rooms.User, room rooms.Room, id string) (View, error) {
	if err := allowed(actor, room); err != nil {
		return View{}, err
	}
	d, err := s.find(ctx, room, id)
	if err != nil {
		return View{}, err
	}
	v := d.view()
	if d.State != StateUploading {
		return v, nil
	}
	_, have, err := s.storedParts(ctx, &d)
	if err != nil {
		return View{}, fmt.Errorf("%w: %w", rooms.ErrUnavailable, err)
	}
	for n := 1; n <= d.parts(); n++ {
		if have[n] {
			v.Uploaded = append(v.Uploaded, n)
		}
	}
	if v.Parts, err = s.partURLs(ctx, &d, have); err != nil {
		return View{}, err
	}
	return v, nil
}

// Complete assembles the uploaded parts and hands the file to processing. Every part must
// be in the store (409 names the missing ones). Completing again is harmless.
func (s *Service) Complete(ctx context.Context, actor rooms.User, room rooms.Room, id string) (View, error) {
	if err := allowed(actor, room); err != nil {
		return View{}, err
	}
	d, err := s.find(ctx, room, id)
	if err != nil {
		return View{}, err
	}
	if d.State != StateUploading {
		return d.view(), nil
	}
	parts, have, err := s.storedParts(ctx, &d)
	if err != nil {
		return View{}, fmt.Errorf("%w: %w", rooms.ErrUnavailable, err)
	}
	var missing []string
	for n := 1; n <= d.parts(); n++ {
		if !have[n] && len(missing) < 20 {
			missing = append(missing, fmt.Sprint(n))
		}
	}
	if len(missing) > 0 {
		return View{}, &rooms.ConflictError{Field: "parts", Message: "parts not uploaded yet: " + strings.Join(missing, ", ")}
	}
	if err := s.cfg.Store.CompleteUpload(ctx, d.Key, d.StoreUpload, parts); err != nil {
		// A complete racing this one may have assembled it already.
		if obj, herr := s.cfg.Store.Head(ctx, d.Key); herr != nil || obj.Size != d.Size {
			return View{}, fmt.Errorf("complete upload %s: %w: %w", id, rooms.ErrUnavailable, err)
		}
	}
	if err := s.setState(ctx, &d, StateUploading, bson.D{{Key: "state", Value: StateProcessing}}); err != nil {
		return View{}, err
	}
	s.log.Info("upload complete, processing", "upload_id", id, "room_id", room.ID, "bytes", d.Size)
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return d.view(), nil
}

// Abort cancels an upload that is still uploading; its parts are deleted.
func (s *Service) Abort(ctx context.Context, actor rooms.User, room rooms.Room, id string) error {
	if err := allowed(actor, room); err != nil {
		return err
	}
	d, err := s.find(ctx, room, id)
	if err != nil {
		return err
	}
	switch d.State {
	case StateAborted:
		return nil
	case StateUploading:
	default:
		return &rooms.ConflictError{Field: "state", Message: "the upload is " + d.State + ": only an upload in progress can be canceled"}
	}
	if err := s.setState(ctx, &d, StateUploading, bson.D{{Key: "state", Value: StateAborted}}); err != nil {
		return err
	}
	s.cleanup(ctx, &d)
	s.log.Info("upload aborted", "upload_id", id, "room_id", room.ID, "by", actor.ID)
	return nil
}

// errMoved: the upload was not in the state expected; someone else moved it on.
var errMoved = errors.New("upload changed state meanwhile")

// setState moves d from state from with set (updated is set too), and updates d.
func (s *Service) setState(ctx context.Context, d *doc, from string, set bson.D) error {
	now := s.now()
	set = append(set, bson.E{Key: "updated", Value: now})
	octx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.uploads.UpdateOne(octx, bson.D{{Key: "_id", Value: d.ID}, {Key: "state", Value: from}}, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return dbError("update upload "+d.ID.Hex(), err)
	}
	if res.MatchedCount == 0 {
		return &rooms.ConflictError{Field: "state", Message: fmt.Sprintf("upload %s: %s", d.ID.Hex(), errMoved)}
	}
	var fresh doc
	if err := s.uploads.FindOne(octx, bson.D{{Key: "_id", Value: d.ID}}).Decode(&fresh); err == nil {
		*d = fresh
	} else if !errors.Is(err, mongo.ErrNoDocuments) {
		return dbError("read upload "+d.ID.Hex(), err)
	}
	return nil
}

// cleanup removes what an upload left in the store (its parts, its assembled file) and
// notes that it did; what fails now is left for the janitor.
func (s *Service) cleanup(ctx context.Context, d *doc) {
	err := s.cfg.Store.AbortUpload(ctx, d.Key, d.StoreUpload)
	if err == nil {
		err = s.cfg.Store.Delete(ctx, d.Key)
	}
	if err != nil {
		s.log.Warn("upload's objects left for the janitor", "upload_id", d.ID.Hex(), "key", d.Key, "err", err)
		return
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	if _, err := s.uploads.UpdateOne(octx, bson.D{{Key: "_id", Value: d.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "cleaned", Value: true}}}}); err != nil {
		s.log.Warn("upload cleaned but not marked so", "upload_id", d.ID.Hex(), "err", err)
	}
}
