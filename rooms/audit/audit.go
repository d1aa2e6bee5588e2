// Package audit keeps onair's audit trail: which owner, moderator or admin did what to
// which room, user, chat message, broadcast or webhook, when, and from which address.
//
// # Where entries come from
//
// The services that carry out the actions report them, after they took effect:
// rooms.Service (rooms, stream keys, moderators, broadcasts), chat.Hub (chat moderation)
// and webhook.Dispatcher (room webhooks) each take a Recorder in their Config, which
// cmd/onair wires to a *Log. Emitting at the source rather than in the HTTP handlers means
// no caller (API, websocket, a future CLI) can carry out an action without it being
// recorded, and failed or refused attempts are never recorded as actions. The web layer
// only adds the client's address to the request's context (WithClientIP); Record reads it.
//
// # Writing
//
// Entries are insert-only documents. Record never blocks and never fails the action: it
// queues the entry in memory (bounded by Config.QueueSize) and Run, the single writer,
// inserts the queue in batches, retrying with backoff while MongoDB is unreachable. An
// entry that does not fit in the queue, or is still unwritten when Run's shutdown
// deadline passes, is dropped: logged at error level with its action, and counted
// (Dropped). A retried insert whose first answer was lost hits the unique _id and counts
// as written.
//
// # Collection
//
//	audit_log  {_id ObjectId, at, action, actor {id, handle, admin}, room {id, slug, title},
//	            target {kind, id, name}, details {...}, ip, node}
//	           time {at -1, _id -1}, room {room.id 1, at -1}, room_slug {room.slug 1, at -1},
//	           actor {actor.id 1, at -1}
//
// Entries are inserted, never updated, and kept forever (no TTL index: delete old ones
// with a plain deleteMany on "at" if needed).
package audit

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/internal/cursor"
	"onair/rooms/mongodb"
)

// Collection is the name of the audit trail's collection.
const Collection = "audit_log"

// Action names. Room owners and admins: Room*, Key*, Moderator*, Viewer*,
// Broadcast*, Webhook*; moderators, owners and admins: Chat*; account holders and
// admins: user.* and token.*.
const (
	RoomCreate       = "room.create"
	RoomUpdate       = "room.update" // details: the changed settings with their new values
	RoomDelete       = "room.delete"
	KeyRotate        = "room.key_rotate"
	ModeratorAdd     = "room.moderator_add"
	ModeratorRemove  = "room.moderator_remove"
	ViewerInvite     = "room.viewer_invite" // target: the viewer invited to a private room
	ViewerRevoke     = "room.viewer_revoke" // target: the viewer whose invitation was revoked
	BroadcastDelete  = "broadcast.delete"
	BroadcastRetitle = "broadcast.retitle" // details: title, the new one
	ChatDelete       = "chat.delete"       // target: the message; details: its author
	ChatTimeout      = "chat.timeout"      // details: duration_ms, reason
	ChatBan          = "chat.ban"          // details: reason
	ChatUnban        = "chat.unban"        //
	ChatSlowMode     = "chat.slow_mode"    // details: interval_ms (0: off)
	ChatPurge        = "chat.purge"        // target: the user; details: count, window_ms
	WebhookCreate    = "webhook.create"
	WebhookUpdate    = "webhook.update" // details: the changed settings
	WebhookDelete    = "webhook.delete"
	WebhookTest      = "webhook.test"      // target: the webhook sent a test event
	WebhookRedeliver = "webhook.redeliver" // target: the webhook; details: delivery, new_delivery
	// Accounts: the user themselves (PasswordChange, SessionsRevoke, UserDelete, Token*)
	// or an admin (UserDisable, UserEnable, AdminGrant, AdminRevoke); the target is the
	// account.
	PasswordChange = "user.password_change"
	SessionsRevoke = "user.sessions_revoke" // details: sessions (how many ended)
	UserDelete     = "user.delete"          // details: rooms (how many were deleted with it)
	UserDisable    = "user.disable"         // details: sessions, streams_stopped
	UserEnable     = "user.enable"
	AdminGrant     = "user.admin_grant"
	AdminRevoke    = "user.admin_revoke"
	TokenCreate    = "token.create" // target: the token (id, name); details: scopes, expires
	TokenRevoke    = "token.revoke"
)

// Target kinds.
const (
	KindRoom      = "room"
	KindUser      = "user"
	KindMessage   = "message"
	KindBroadcast = "broadcast"
	KindWebhook   = "webhook"
	KindToken     = "token"
)

// Sentinel errors of List.
var (
	// ErrInvalid: a query parameter was rejected; see *ValidationError.
	ErrInvalid = errors.New("invalid audit query")
	// ErrUnavailable: MongoDB could not be reached in time.
	ErrUnavailable = errors.New("audit log unavailable")
)

// ValidationError names the query field that was rejected. errors.Is(err, ErrInvalid) holds.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Actor is who acted.
type Actor struct {
	ID     string `json:"id" bson:"id"`
	Handle string `json:"handle" bson:"handle"`
	Admin  bool   `json:"admin,omitempty" bson:"admin,omitempty"`
}

// Room is the room acted in or on.
type Room struct {
	ID    string `json:"id" bson:"id"`
	Slug  string `json:"slug" bson:"slug"`
	Title string `json:"title,omitempty" bson:"title,omitempty"`
}

// Target is what was acted on, when it is not the room itself.
type Target struct {
	Kind string `json:"kind" bson:"kind"` // one of the Kind* constants
	ID   string `json:"id" bson:"id"`
	// Name is a human label: a user's handle, a webhook's host.
	Name string `json:"name,omitempty" bson:"name,omitempty"`
}

// Entry is one recorded action.
type Entry struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Actor  Actor     `json:"actor"`
	Room   *Room     `json:"room,omitempty"`
	Target *Target   `json:"target,omitempty"`
	// Details are flat facts about the action (strings, numbers, booleans, lists of
	// strings); never secrets.
	Details map[string]any `json:"details,omitempty"`
	// IP is the client's address when the action came through the API.
	IP string `json:"ip,omitempty"`
	// Node is the onair process that carried out the action.
	Node string `json:"node,omitempty"`
}

type entryDoc struct {
	ID      bson.ObjectID  `bson:"_id"`
	At      time.Time      `bson:"at"`
	Action  string         `bson:"action"`
	Actor   Actor          `bson:"actor"`
	Room    *Room          `bson:"room,omitempty"`
	Target  *Target        `bson:"target,omitempty"`
	Details map[string]any `bson:"details,omitempty"`
	IP      string         `bson:"ip,omitempty"`
	Node    string         `bson:"node"`
}

func (d *entryDoc) entry() Entry {
	return Entry{ID: d.ID.Hex(), At: d.At.UTC(), Action: d.Action, Actor: d.Actor, Room: d.Room, Target: d.Target,
		Details: normalize(d.Details), IP: d.IP, Node: d.Node}
}

// normalize turns the driver's decoded values into plain JSON-friendly ones.
func normalize(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case int32:
			out[k] = int64(x)
		case bson.A:
			out[k] = []any(x)
		default:
			out[k] = v
		}
	}
	return out
}

// Recorder takes audit entries. Record must return quickly and never fail the caller's
// action; ctx is the action's context (for the client address), possibly cancelled.
type Recorder interface {
	Record(ctx context.Context, e Entry)
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(ctx context.Context, e Entry)

// Record implements Recorder.
func (f RecorderFunc) Record(ctx context.Context, e Entry) { f(ctx, e) }

// Multi hands every entry to each of its recorders in turn (nil ones are skipped).
type Multi []Recorder

// Record implements Recorder.
func (m Multi) Record(ctx context.Context, e Entry) {
	for _, r := range m {
		if r != nil {
			r.Record(ctx, e)
		}
	}
}

type ctxKey struct{}

// WithClientIP returns ctx carrying the client's address, for the entries recorded on
// its behalf.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, ctxKey{}, ip)
}

// ClientIP is the client address WithClientIP put in ctx, or "".
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(ctxKey{}).(string)
	return ip
}

// Config configures a Log. Only DB is required.
type Config struct {
	// DB holds the collection audit_log.
	DB *mongo.Database
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// NodeID names this process in entries (default: the host name).
	NodeID string
	// QueueSize bounds the entries waiting to be written (default 10 000).
	QueueSize int
	// OpTimeout bounds each MongoDB operation (default 3 s).
	OpTimeout time.Duration
	// RetryMin and RetryMax bound the backoff of failed writes (defaults 200 ms and 10 s).
	RetryMin, RetryMax time.Duration
	// DrainTimeout is how long Run, once its context ends, keeps writing what is queued
	// (default 5 s).
	DrainTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Log is the audit trail: a Recorder writing to MongoDB, and its listing.
type Log struct {
	cfg     Config
	log     *slog.Logger
	coll    *mongo.Collection
	queue   chan entryDoc
	dropped atomic.Uint64
	written atomic.Uint64
}

// New checks cfg and returns a Log. Call EnsureIndexes at start and Run for the writer.
func New(cfg Config) (*Log, error) {
	if cfg.DB == nil {
		return nil, errors.New("audit: Config.DB is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NodeID == "" {
		cfg.NodeID, _ = os.Hostname()
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.OpTimeout, 3*time.Second)
	def(&cfg.RetryMin, 200*time.Millisecond)
	def(&cfg.RetryMax, 10*time.Second)
	def(&cfg.DrainTimeout, 5*time.Second)
	return &Log{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "audit"),
		coll:  cfg.DB.Collection(Collection),
		queue: make(chan entryDoc, cfg.QueueSize),
	}, nil
}

// EnsureIndexes creates the indexes if they are missing (idempotent).
func (l *Log) EnsureIndexes(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 4*l.cfg.OpTimeout)
	defer cancel()
	return dbError("audit indexes", mongodb.CreateIndexes(ctx, l.coll,
		mongodb.Index{Name: "time", Keys: mongodb.Keys("at", -1, "_id", -1)},
		mongodb.Index{Name: "room", Keys: mongodb.Keys("room.id", 1, "at", -1)},
		mongodb.Index{Name: "room_slug", Keys: mongodb.Keys("room.slug", 1, "at", -1)},
		mongodb.Index{Name: "actor", Keys: mongodb.Keys("actor.id", 1, "at", -1)},
	))
}

// Record queues e for writing; it never blocks. ID, Node and (when zero) At are set
// here, and IP from ctx when e has none.
func (l *Log) Record(ctx context.Context, e Entry) {
	if e.At.IsZero() {
		e.At = l.cfg.Now()
	}
	if e.IP == "" && ctx != nil {
		e.IP = ClientIP(ctx)
	}
	d := entryDoc{
		ID: bson.NewObjectID(), At: e.At.UTC().Truncate(time.Millisecond), Action: e.Action, Actor: e.Actor,
		Room: e.Room, Target: e.Target, Details: e.Details, IP: e.IP, Node: l.cfg.NodeID,
	}
	select {
	case l.queue <- d:
	default:
		l.drop(d, "queue full")
	}
}

func (l *Log) drop(d entryDoc, why string) {
	n := l.dropped.Add(1)
	attrs := []any{"action", d.Action, "actor_id", d.Actor.ID, "at", d.At, "dropped_total", n}
	if d.Room != nil {
		attrs = append(attrs, "room_id", d.Room.ID)
	}
	l.log.Error("audit entry dropped: "+why, attrs...)
}

// Dropped is how many entries were lost since the start (queue full, or not written by
// the shutdown deadline).
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Written is how many entries were written since the start.
func (l *Log) Written() uint64 { return l.written.Load() }

// Queued is how many entries wait to be written.
func (l *Log) Queued() int { return len(l.queue) }

const maxBatch = 100

// Run writes queued entries until ctx ends, then for up to DrainTimeout what is left.
func (l *Log) Run(ctx context.Context) error {
	var batch []entryDoc
	for {
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				l.drain(nil)
				return nil
			case d := <-l.queue:
				batch = append(batch, d)
			}
		}
		batch = l.fill(batch)
		batch = l.write(ctx, batch)
		if ctx.Err() != nil {
			l.drain(batch)
			return nil
		}
	}
}

// fill adds what is queued to batch, up to maxBatch, without waiting.
func (l *Log) fill(batch []entryDoc) []entryDoc {
	for len(batch) < maxBatch {
		select {
		case d := <-l.queue:
			batch = append(batch, d)
		default:
			return batch
		}
	}
	return batch
}

// write inserts batch, retrying with backoff while MongoDB is unreachable, until it is
// written or ctx ends; it returns what is left unwritten (only when ctx ended). Entries
// MongoDB keeps refusing for another reason are dropped after a few attempts.
func (l *Log) write(ctx context.Context, batch []entryDoc) []entryDoc {
	wait := l.cfg.RetryMin
	refused := 0
	for attempt := 1; len(batch) > 0; attempt++ {
		octx, cancel := context.WithTimeout(ctx, l.cfg.OpTimeout)
		left, err := l.insert(octx, batch)
		cancel()
		if err == nil {
			if attempt > 1 {
				l.log.Info("audit entries written after retries", "attempts", attempt)
			}
			return nil
		}
		batch = left
		if ctx.Err() != nil {
			return batch
		}
		if !mongodb.Unavailable(err) {
			if refused++; refused >= 5 {
				for _, d := range batch {
					l.drop(d, err.Error())
				}
				return nil
			}
		}
		if attempt == 1 || attempt%10 == 0 {
			l.log.Warn("audit entries not written yet; will retry", "entries", len(batch), "attempts", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return batch
		case <-time.After(wait):
		}
		wait = min(2*wait, l.cfg.RetryMax)
	}
	return nil
}

// insert writes docs (unordered) and returns those not written. Duplicates of _id are
// retries of an earlier insert whose answer was lost: they count as written.
func (l *Log) insert(ctx context.Context, docs []entryDoc) ([]entryDoc, error) {
	_, err := l.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		l.written.Add(uint64(len(docs)))
		return nil, nil
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0 {
		var left []entryDoc
		for _, we := range bwe.WriteErrors {
			if we.Index >= 0 && we.Index < len(docs) && !mongodb.IsDup(we) {
				left = append(left, docs[we.Index])
			}
		}
		l.written.Add(uint64(len(docs) - len(left)))
		if len(left) == 0 {
			return nil, nil
		}
		return left, dbError("insert audit entries", err)
	}
	return docs, dbError("insert audit entries", err)
}

// drain writes what is left at shutdown, within DrainTimeout; the rest is dropped.
func (l *Log) drain(batch []entryDoc) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.DrainTimeout)
	defer cancel()
	for {
		batch = l.fill(batch)
		if len(batch) == 0 {
			return
		}
		batch = l.write(ctx, batch)
		if ctx.Err() != nil {
			for _, d := range append(batch, l.fill(nil)...) {
				l.drop(d, "not written by the shutdown deadline")
			}
			return
		}
	}
}

// Query selects entries for List.
type Query struct {
	// Room keeps the entries of one room, by slug or id.
	Room string
	// Actor keeps the entries of one user, by handle (with or without @) or id.
	Actor string
	// Action keeps one action ("chat.ban"), or a family with a trailing ".*" ("chat.*").
	Action string
	// Limit is the page size: default 50, at most 200.
	Limit int
	// Cursor is Page.Next of the previous page.
	Cursor string
}

// Page is one page of List, newest first.
type Page struct {
	Entries []Entry `json:"entries"`
	// Next is the cursor of the next page, "" on the last.
	Next string `json:"next,omitempty"`
}

type pagePos struct {
	At time.Time     `json:"a"`
	ID bson.ObjectID `json:"i"`
}

var actionRE = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)?(\.\*)?$`)

// List returns entries, newest first.
func (l *Log) List(ctx context.Context, q Query) (Page, error) {
	var and bson.A
	if v := strings.TrimSpace(q.Room); v != "" {
		if len(v) > 100 {
			return Page{}, &ValidationError{Field: "room", Message: "must be a room's slug or id"}
		}
		and = append(and, bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "room.slug", Value: strings.ToLower(v)}}, bson.D{{Key: "room.id", Value: v}},
		}}})
	}
	if v := strings.TrimSpace(q.Actor); v != "" {
		if len(v) > 100 {
			return Page{}, &ValidationError{Field: "actor", Message: "must be a user's handle or id"}
		}
		and = append(and, bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "actor.handle", Value: strings.ToLower(strings.TrimPrefix(v, "@"))}}, bson.D{{Key: "actor.id", Value: v}},
		}}})
	}
	if v := strings.TrimSpace(q.Action); v != "" {
		if len(v) > 64 || !actionRE.MatchString(v) {
			return Page{}, &ValidationError{Field: "action", Message: `must be an action name such as "chat.ban", or a family such as "chat.*"`}
		}
		if family, ok := strings.CutSuffix(v, ".*"); ok {
			and = append(and, bson.D{{Key: "action", Value: bson.D{{Key: "$regex", Value: "^" + regexp.QuoteMeta(family) + `\.`}}}})
		} else {
			and = append(and, bson.D{{Key: "action", Value: v}})
		}
	}
	if q.Cursor != "" {
		c, ok := cursor.Decode[pagePos](q.Cursor)
		if !ok {
			return Page{}, &ValidationError{Field: "cursor", Message: "is not a cursor this server gave out"}
		}
		and = append(and, cursor.Older("at", c.At, c.ID))
	}
	filter := bson.D{}
	if len(and) > 0 {
		filter = bson.D{{Key: "$and", Value: and}}
	}
	limit := cursor.Limit(q.Limit, 50, 200)
	octx, cancel := context.WithTimeout(ctx, l.cfg.OpTimeout)
	defer cancel()
	cur, err := l.coll.Find(octx, filter, options.Find().
		SetSort(bson.D{{Key: "at", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit+1)))
	if err != nil {
		return Page{}, dbError("list audit entries", err)
	}
	var docs []entryDoc
	if err := cur.All(octx, &docs); err != nil {
		return Page{}, dbError("list audit entries", err)
	}
	var page Page
	page.Entries, page.Next = cursor.Page(docs, limit, (*entryDoc).entry,
		func(d *entryDoc) any { return pagePos{At: d.At, ID: d.ID} })
	return page, nil
}

func dbError(op string, err error) error { return mongodb.Wrap(op, err, ErrUnavailable) }
