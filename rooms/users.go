package rooms

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/audit"
	"onair/rooms/internal/cursor"
)

// Users as admins manage them: listing and searching accounts, disabling one, making
// another admin. A user document is written by its holder (password) and by admins (the
// flags here): this process serialises its writes to one with the same per-key lock as
// rooms' (doc.go, The embedded database).

// UserByHandle returns the account with this handle (case-insensitive).
func (s *Service) UserByHandle(ctx context.Context, handle string) (User, error) {
	handle = normalizeHandle(handle)
	if validateHandle(handle) != nil {
		return User{}, fmt.Errorf("user @%s: %w", handle, ErrNotFound)
	}
	var d userDoc
	octx, cancel := s.op(ctx)
	defer cancel()
	err := s.users.FindOne(octx, bson.D{{Key: "handle", Value: handle}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return User{}, fmt.Errorf("user @%s: %w", handle, ErrNotFound)
	}
	if err != nil {
		return User{}, dbError("find user", err)
	}
	return d.user(), nil
}

// FindUser returns the account named by ref: its id or its handle (with or without @).
func (s *Service) FindUser(ctx context.Context, ref string) (User, error) {
	if oid, err := bson.ObjectIDFromHex(ref); err == nil {
		return s.userByID(ctx, oid)
	}
	return s.UserByHandle(ctx, strings.TrimPrefix(ref, "@"))
}

func (s *Service) userByID(ctx context.Context, id bson.ObjectID) (User, error) {
	var d userDoc
	octx, cancel := s.op(ctx)
	defer cancel()
	err := s.users.FindOne(octx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return User{}, fmt.Errorf("user %s: %w", id.Hex(), ErrNotFound)
	}
	if err != nil {
		return User{}, dbError("find user", err)
	}
	return d.user(), nil
}

// UserQuery selects accounts for ListUsers.
type UserQuery struct {
	// Search keeps accounts whose handle or email contains it, case-insensitively.
	Search string
	// Disabled keeps only disabled accounts; Admins only admins.
	Disabled, Admins bool
	// Limit is the page size: default 50, at most 200.
	Limit int
	// Cursor is UserPage.Next of the previous page.
	Cursor string
}

// UserPage is one page of ListUsers, newest accounts first.
type UserPage struct {
	Users []User `json:"users"`
	Next  string `json:"next,omitempty"`
}

type userCursor struct {
	Created time.Time     `json:"c"`
	ID      bson.ObjectID `json:"i"`
}

// ListUsers lists accounts to an admin (ErrForbidden for anyone else).
func (s *Service) ListUsers(ctx context.Context, actor User, q UserQuery) (UserPage, error) {
	if !actor.Admin {
		return UserPage{}, fmt.Errorf("list users: admins only: %w", ErrForbidden)
	}
	filter := bson.D{}
	if search := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(q.Search), "@")); search != "" {
		if utf8.RuneCountInString(search) > 254 {
			return UserPage{}, invalid("q", "must be at most 254 characters")
		}
		re := bson.D{{Key: "$regex", Value: regexp.QuoteMeta(strings.ToLower(search))}}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{bson.D{{Key: "handle", Value: re}}, bson.D{{Key: "email", Value: re}}}})
	}
	if q.Disabled {
		filter = append(filter, bson.E{Key: "disabled", Value: true})
	}
	if q.Admins {
		filter = append(filter, bson.E{Key: "admin", Value: true})
	}
	if q.Cursor != "" {
		c, err := decodeCursor[userCursor](q.Cursor)
		if err != nil {
			return UserPage{}, err
		}
		// In an $and: the search above is an $or of its own.
		filter = append(filter, bson.E{Key: "$and", Value: bson.A{cursor.Older("created", c.Created, c.ID)}})
	}
	limit := cursor.Limit(q.Limit, 50, 200)
	docs, err := findAll[userDoc](ctx, s, s.users, filter, options.Find().
		SetSort(bson.D{{Key: "created", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit+1)).
		SetProjection(bson.D{{Key: "password", Value: 0}}), "list users")
	if err != nil {
		return UserPage{}, err
	}
	var page UserPage
	page.Users, page.Next = cursor.Page(docs, limit, (*userDoc).user,
		func(d *userDoc) any { return userCursor{Created: d.Created, ID: d.ID} })
	return page, nil
}

// UserUpdate is what an admin changes of an account; nil fields stay.
type UserUpdate struct {
	Disabled *bool
	Admin    *bool
}

// UpdateUser lets an admin disable or enable an account, or make it an admin or not.
// Disabling ends the account's sessions at once, refuses its API tokens, and stops its
// rooms' live publishes: on this node at once, on the node a stream runs on at its next
// broadcast heartbeat (checkRoom), and no new publish resolves its keys. Nobody changes
// their own account this way (so there is always an admin left). Errors: ErrForbidden
// (not an admin, or oneself), ErrNotFound, ErrUnavailable.
func (s *Service) UpdateUser(ctx context.Context, actor User, ref string, in UserUpdate) (User, error) {
	if !actor.Admin {
		return User{}, fmt.Errorf("update user: admins only: %w", ErrForbidden)
	}
	target, err := s.FindUser(ctx, ref)
	if err != nil {
		return User{}, err
	}
	if target.ID == actor.ID {
		return User{}, &ConflictError{Field: "user", Message: "admins cannot disable themselves or take away their own admin rights: ask another admin"}
	}
	set := bson.D{}
	if in.Disabled != nil && *in.Disabled != target.Disabled {
		set = append(set, bson.E{Key: "disabled", Value: *in.Disabled})
	}
	if in.Admin != nil && *in.Admin != target.Admin {
		set = append(set, bson.E{Key: "admin", Value: *in.Admin})
	}
	if len(set) == 0 {
		return target, nil
	}
	oid, _ := bson.ObjectIDFromHex(target.ID)
	after, err := s.updateUser(ctx, oid, bson.D{{Key: "$set", Value: set}}, "update user")
	if err != nil {
		return User{}, err
	}
	who := userTarget(UserRef{ID: after.ID, Handle: after.Handle})
	if in.Admin != nil && after.Admin != target.Admin {
		action := audit.AdminRevoke
		if after.Admin {
			action = audit.AdminGrant
		}
		s.log.Info("admin rights changed", "user_id", after.ID, "admin", after.Admin, "by", actor.ID)
		s.record(ctx, actor, action, nil, who, nil)
	}
	if in.Disabled != nil && after.Disabled != target.Disabled {
		if !after.Disabled {
			s.log.Info("account enabled", "user_id", after.ID, "by", actor.ID)
			s.record(ctx, actor, audit.UserEnable, nil, who, nil)
			return after, nil
		}
		sessions, stopped := s.endAccess(ctx, oid)
		s.log.Info("account disabled", "user_id", after.ID, "by", actor.ID, "sessions", sessions, "streams_stopped", stopped)
		s.record(ctx, actor, audit.UserDisable, nil, who, map[string]any{"sessions": sessions, "streams_stopped": stopped})
	}
	return after, nil
}

// updateUser applies update to one user document and returns it as written.
func (s *Service) updateUser(ctx context.Context, id bson.ObjectID, update bson.D, what string) (User, error) {
	unlock := s.locks.lock("user:" + id.Hex())
	defer unlock()
	var d userDoc
	octx, cancel := s.op(ctx)
	defer cancel()
	err := s.users.FindOneAndUpdate(octx, bson.D{{Key: "_id", Value: id}}, update,
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return User{}, fmt.Errorf("%s %s: %w", what, id.Hex(), ErrNotFound)
	}
	if err != nil {
		return User{}, dbError(what, err)
	}
	return d.user(), nil
}

// endAccess ends what a disabled account holds: its sessions, and the live publishes of
// its rooms on this node. It says how many of each. Failures are logged: the account is
// refused everywhere already (Authenticate, AuthenticateToken, ResolveKey, checkRoom).
func (s *Service) endAccess(ctx context.Context, uid bson.ObjectID) (sessions int64, stopped int) {
	octx, cancel := s.op(ctx)
	res, err := s.sessions.DeleteMany(octx, bson.D{{Key: "user_id", Value: uid}})
	cancel()
	if err != nil {
		s.log.Warn("sessions of a disabled account not deleted; they are refused anyway", "user_id", uid.Hex(), "err", err)
	} else {
		sessions = res.DeletedCount
	}
	rooms, err := s.ownedRooms(ctx, uid)
	if err != nil {
		s.log.Warn("rooms of a disabled account not listed; their streams stop at the next heartbeat", "user_id", uid.Hex(), "err", err)
	}
	for _, r := range rooms {
		s.keys.evictRoom(r.ID)
		if s.cfg.Stopper != nil && s.cfg.Stopper.Stop(r.StreamName(), errOwnerDisabled) {
			stopped++
			s.log.Info("live stream stopped: owner disabled", "room_id", r.ID)
		}
	}
	return sessions, stopped
}

// maxOwnedRooms bounds what ownedRooms reads of one account.
const maxOwnedRooms = 10_000

// ownedRooms are every room of the account, whatever their visibility.
func (s *Service) ownedRooms(ctx context.Context, uid bson.ObjectID) ([]Room, error) {
	if _, err := s.Playback(ctx); err != nil {
		return nil, err
	}
	docs, err := findAll[roomDoc](ctx, s, s.rooms, bson.D{{Key: "owner_id", Value: uid}},
		options.Find().SetLimit(maxOwnedRooms).SetProjection(bson.D{{Key: "key_hash", Value: 0}}), "list the account's rooms")
	if err != nil {
		return nil, err
	}
	out := make([]Room, len(docs))
	for i := range docs {
		out[i] = s.room(&docs[i])
	}
	return out, nil
}

// ownerDisabled reports whether the account that owns a room is disabled. A deleted
// account counts as disabled: its rooms go with it (DeleteAccount).
func (s *Service) ownerDisabled(ctx context.Context, owner bson.ObjectID) (bool, error) {
	var d struct {
		Disabled bool `bson:"disabled"`
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	err := s.users.FindOne(octx, bson.D{{Key: "_id", Value: owner}},
		options.FindOne().SetProjection(bson.D{{Key: "disabled", Value: 1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return true, nil
	}
	if err != nil {
		return false, dbError("read the room owner's account", err)
	}
	return d.Disabled, nil
}

// disabledAmong returns which of the accounts ids are disabled (or gone), in one query.
func (s *Service) disabledAmong(ctx context.Context, ids []bson.ObjectID) (map[bson.ObjectID]bool, error) {
	out := map[bson.ObjectID]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	in := bson.A{}
	for _, id := range ids {
		in = append(in, id)
		out[id] = true // gone unless found enabled
	}
	docs, err := findAll[userDoc](ctx, s, s.users, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: in}}}},
		options.Find().SetProjection(bson.D{{Key: "disabled", Value: 1}}), "read accounts")
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		out[d.ID] = d.Disabled
	}
	return out, nil
}

// findAll reads every document of coll that filter matches (within opts) as Ds, within
// one operation's time; what names the read in errors.
func findAll[D any](ctx context.Context, s *Service, coll *mongo.Collection, filter bson.D, opts *options.FindOptionsBuilder, what string) ([]D, error) {
	octx, cancel := s.op(ctx)
	defer cancel()
	cur, err := coll.Find(octx, filter, opts)
	if err != nil {
		return nil, dbError(what, err)
	}
	var docs []D
	if err := cur.All(octx, &docs); err != nil {
		return nil, dbError(what, err)
	}
	return docs, nil
}
