package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// messageDoc is a document of chat_messages: one chat message or system notice.
type messageDoc struct {
	ID        bson.ObjectID `bson:"_id"`
	Room      string        `bson:"room"`
	Kind      string        `bson:"kind"` // "message" or "system"
	UserID    string        `bson:"user_id,omitempty"`
	Handle    string        `bson:"handle,omitempty"`
	Admin     bool          `bson:"admin,omitempty"` // the author was an admin: only admins delete it
	Text      string        `bson:"text"`
	At        time.Time     `bson:"at"`
	Node      string        `bson:"node"`
	Deleted   bool          `bson:"deleted"`
	DeletedBy string        `bson:"deleted_by,omitempty"`
	DeletedAt *time.Time    `bson:"deleted_at,omitempty"`
}

func (d *messageDoc) message() Message {
	return Message{Type: d.Kind, ID: d.ID.Hex(), UserID: d.UserID, Handle: d.Handle, Text: d.Text, At: d.At.UTC()}
}

// actionDoc is a document of chat_moderation: one moderation action.
type actionDoc struct {
	ID           bson.ObjectID `bson:"_id"`
	Room         string        `bson:"room"`
	Action       ActionKind    `bson:"action"`
	ActorID      string        `bson:"actor_id"`
	ActorHandle  string        `bson:"actor_handle,omitempty"`
	TargetID     string        `bson:"target_id,omitempty"`
	TargetHandle string        `bson:"target_handle,omitempty"`
	MessageID    string        `bson:"message_id,omitempty"`
	DurationMS   int64         `bson:"duration_ms,omitempty"`
	Count        int           `bson:"count,omitempty"` // messages a purge deleted
	Reason       string        `bson:"reason,omitempty"`
	At           time.Time     `bson:"at"`
	Node         string        `bson:"node"`
}

func (d *actionDoc) action() Action {
	return Action{
		ID: d.ID.Hex(), Action: d.Action, ActorID: d.ActorID, ActorHandle: d.ActorHandle,
		TargetID: d.TargetID, TargetHandle: d.TargetHandle, MessageID: d.MessageID,
		Duration: time.Duration(d.DurationMS) * time.Millisecond, Count: d.Count, Reason: d.Reason, At: d.At.UTC(),
	}
}

// banDoc is a document of chat_bans: a user's ban and/or timeout in a room.
type banDoc struct {
	ID     string    `bson:"_id"` // room + "/" + user
	Room   string    `bson:"room"`
	UserID string    `bson:"user_id"`
	Handle string    `bson:"handle,omitempty"`
	Banned bool      `bson:"banned"`
	Until  time.Time `bson:"until,omitempty"` // end of a timeout
	Reason string    `bson:"reason,omitempty"`
	By     string    `bson:"by"`
	// ByAdmin: By was an admin when they set it, so only admins change or lift it.
	ByAdmin bool      `bson:"by_admin,omitempty"`
	At      time.Time `bson:"at"`
}

func banID(room, user string) string { return room + "/" + user }

// settingsDoc is a document of chat_settings: a room's chat settings.
type settingsDoc struct {
	ID         string    `bson:"_id"` // room ID
	SlowModeMS int64     `bson:"slow_mode_ms"`
	By         string    `bson:"by"`
	ByAdmin    bool      `bson:"by_admin,omitempty"` // as banDoc.ByAdmin
	At         time.Time `bson:"at"`
}

// eventDoc is a document of the capped collection chat_events: a batch of one node's
// events (about eventLinger's worth), in that node's publication order, as a JSON array
// of event in a binary field. One document per batch, and one opaque field per document,
// keep FerretDB's tailable cursors cheap: they rescan and decode the whole collection
// every 10 ms. A document without a batch is a marker.
type eventDoc struct {
	ID    bson.ObjectID `bson:"_id"`
	Node  string        `bson:"node"`
	Batch []byte        `bson:"batch,omitempty"`
}

// event is one event for other nodes: a frame for a room's sockets.
type event struct {
	Room  string          `json:"r"`
	Type  string          `json:"t"`
	Frame json.RawMessage `json:"f"` // the JSON frame as sent to sockets
}

// tailedEvents is an eventDoc read by the tail, with its position in the capped collection.
type tailedEvents struct {
	ID       bson.ObjectID `bson:"_id"`
	Node     string        `bson:"node"`
	Batch    []byte        `bson:"batch"`
	RecordID int64         `bson:"$recordId"`
}

// MarshalJSON writes Duration as milliseconds.
func (a Action) MarshalJSON() ([]byte, error) {
	type plain Action
	return json.Marshal(struct {
		plain
		Duration int64 `json:"duration_ms,omitempty"`
	}{plain(a), a.Duration.Milliseconds()})
}

// EnsureIndexes creates the indexes and the capped event collection. It is idempotent.
func (h *Hub) EnsureIndexes(ctx context.Context) error {
	idx := func(c *mongo.Collection, models ...mongo.IndexModel) error {
		if _, err := c.Indexes().CreateMany(ctx, models); err != nil {
			return dbError("create indexes on "+c.Name(), err)
		}
		return nil
	}
	if err := idx(h.messages, mongo.IndexModel{
		Keys:    bson.D{{Key: "room", Value: 1}, {Key: "at", Value: 1}, {Key: "_id", Value: 1}},
		Options: options.Index().SetName("room_at"),
	}); err != nil {
		return err
	}
	if err := idx(h.modlog, mongo.IndexModel{
		Keys:    bson.D{{Key: "room", Value: 1}, {Key: "at", Value: 1}},
		Options: options.Index().SetName("room_at"),
	}); err != nil {
		return err
	}
	if err := idx(h.bans, mongo.IndexModel{
		Keys:    bson.D{{Key: "room", Value: 1}},
		Options: options.Index().SetName("room"),
	}); err != nil {
		return err
	}
	return h.ensureEventLog(ctx)
}

// ensureEventLog creates the capped collection chat_events unless it exists, and checks
// that an existing one is capped.
func (h *Hub) ensureEventLog(ctx context.Context) error {
	specs, err := h.eventDB.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: collEvents}})
	if err != nil {
		return dbError("list collections", err)
	}
	if len(specs) > 0 {
		if capped, ok := specs[0].Options.Lookup("capped").BooleanOK(); !ok || !capped {
			return fmt.Errorf("chat: %s.%s exists and is not a capped collection: drop it and let chat create it",
				h.eventDB.Name(), collEvents)
		}
		return nil
	}
	maxDocs := h.cfg.EventLogMaxDocs
	if maxDocs == 0 {
		maxDocs = h.defaultEventLogDocs(ctx)
	}
	opts := options.CreateCollection().SetCapped(true).SetSizeInBytes(h.cfg.EventLogBytes)
	if maxDocs > 0 {
		opts.SetMaxDocuments(maxDocs)
	}
	h.log.Info("creating the event log", "db", h.eventDB.Name(), "collection", collEvents,
		"bytes", h.cfg.EventLogBytes, "max_docs", maxDocs)
	err = h.eventDB.CreateCollection(ctx, collEvents, opts)
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code == 48 { // NamespaceExists: another node was quicker
		return nil
	}
	if err != nil {
		return dbError("create "+collEvents, err)
	}
	return nil
}

func clampLimit(limit, def int) int {
	if limit <= 0 {
		limit = def
	}
	return min(limit, 500)
}

// History returns the room's last limit messages (default Config.HistorySize, at most
// 500), oldest first, deleted ones excluded, read from MongoDB.
func (h *Hub) History(ctx context.Context, info Room, limit int) ([]Message, error) {
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	docs, err := h.recentMessages(ctx, info.ID, clampLimit(limit, h.cfg.HistorySize))
	if err != nil {
		return nil, err
	}
	out := make([]Message, len(docs))
	for i := range docs {
		out[i] = docs[i].message()
	}
	return out, nil
}

// recentMessages reads a room's last n undeleted messages, oldest first.
func (h *Hub) recentMessages(ctx context.Context, roomID string, n int) ([]messageDoc, error) {
	return h.messagesBefore(ctx, roomID, nil, n)
}

// messagesBefore reads the last n undeleted messages of a room that match older (nil:
// all), oldest first.
func (h *Hub) messagesBefore(ctx context.Context, roomID string, older bson.D, n int) ([]messageDoc, error) {
	if n == 0 {
		return nil, nil
	}
	opts := options.Find().
		SetSort(bson.D{{Key: "at", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(n))
	filter := append(bson.D{{Key: "room", Value: roomID}, {Key: "deleted", Value: false}}, older...)
	cur, err := h.messages.Find(ctx, filter, opts)
	if err != nil {
		return nil, dbError("read history", err)
	}
	var docs []messageDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, dbError("read history", err)
	}
	slices.Reverse(docs)
	return docs, nil
}

// ModerationLog returns the room's last limit moderation actions (default 50, at most
// 500), newest first, to those who may moderate the room now (see authorize).
func (h *Hub) ModerationLog(ctx context.Context, info Room, actor User, limit int) ([]Action, error) {
	if _, err := authorize(info, actor, nil); err != nil {
		return nil, err
	}
	if err := h.checkNotRestricted(ctx, info, actor); err != nil {
		return nil, err
	}
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	opts := options.Find().
		SetSort(bson.D{{Key: "at", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(clampLimit(limit, 50)))
	cur, err := h.modlog.Find(ctx, bson.D{{Key: "room", Value: info.ID}}, opts)
	if err != nil {
		return nil, dbError("read moderation log", err)
	}
	var docs []actionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, dbError("read moderation log", err)
	}
	out := make([]Action, len(docs))
	for i, d := range docs {
		out[i] = d.action()
	}
	return out, nil
}

// snapshot is a room's state as read from MongoDB.
type snapshot struct {
	bans     map[string]banState
	slowMode time.Duration
	recent   []Message
	trimmed  bool // older messages exist beyond recent
}

// loadSnapshot reads a room's bans, settings and recent messages.
func (h *Hub) loadSnapshot(ctx context.Context, roomID string) (*snapshot, error) {
	s := &snapshot{bans: make(map[string]banState)}
	cur, err := h.bans.Find(ctx, bson.D{{Key: "room", Value: roomID}})
	if err != nil {
		return nil, dbError("read bans", err)
	}
	var bans []banDoc
	if err := cur.All(ctx, &bans); err != nil {
		return nil, dbError("read bans", err)
	}
	for _, b := range bans {
		s.bans[b.UserID] = banState{banned: b.Banned, until: b.Until}
	}
	var set settingsDoc
	err = h.settings.FindOne(ctx, bson.D{{Key: "_id", Value: roomID}}).Decode(&set)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
	case err != nil:
		return nil, dbError("read settings", err)
	default:
		s.slowMode = time.Duration(set.SlowModeMS) * time.Millisecond
	}
	n := cacheSize(h.cfg.HistorySize)
	docs, err := h.recentMessages(ctx, roomID, n)
	if err != nil {
		return nil, err
	}
	s.trimmed = len(docs) == n
	s.recent = make([]Message, len(docs))
	for i := range docs {
		s.recent[i] = docs[i].message()
	}
	return s, nil
}

// cacheSize is how many recent messages a room keeps in memory: more than the history
// sent on join, so that deletions do not shorten it at once.
func cacheSize(history int) int { return 2 * history }

// purgeExpiredTimeouts deletes timeouts that have expired of users who are not banned.
func (h *Hub) purgeExpiredTimeouts(ctx context.Context) {
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	res, err := h.bans.DeleteMany(ctx, bson.D{
		{Key: "banned", Value: bson.D{{Key: "$ne", Value: true}}},
		{Key: "until", Value: bson.D{{Key: "$lt", Value: time.Now()}}},
	})
	if err != nil {
		if ctx.Err() == nil {
			h.log.Debug("purge expired timeouts failed", "err", err)
		}
		return
	}
	if res.DeletedCount > 0 {
		h.log.Debug("purged expired timeouts", "count", res.DeletedCount)
	}
}
