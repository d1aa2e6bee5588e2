package chat

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// HistoryPage is a page of a room's chat history, oldest first.
type HistoryPage struct {
	Messages []Message `json:"messages"`
	// NextBefore is the cursor of the page of older messages (the id of the oldest message
	// of this one); "" when there is nothing older.
	NextBefore string `json:"next_before,omitempty"`
}

// HistoryBefore returns the limit messages (default Config.HistorySize, at most 500) just
// older than the message before (a message id; "" for the newest), oldest first, deleted
// ones excluded, as History. Messages are ordered as History orders them, by time and id,
// so a message deleted since it was handed out as a cursor still pages from its place.
func (h *Hub) HistoryBefore(ctx context.Context, info Room, before string, limit int) (HistoryPage, error) {
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	var older bson.D
	if before != "" {
		oid, err := bson.ObjectIDFromHex(before)
		if err != nil {
			return HistoryPage{}, fmt.Errorf("%w: before %q is not a message id", ErrInvalid, before)
		}
		var cur messageDoc
		err = h.messages.FindOne(ctx, bson.D{{Key: "_id", Value: oid}, {Key: "room", Value: info.ID}}).Decode(&cur)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return HistoryPage{}, fmt.Errorf("%w: before %s is no message of this room", ErrInvalid, before)
		case err != nil:
			return HistoryPage{}, dbError("read history cursor", err)
		}
		older = bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: cur.At}}}},
			bson.D{{Key: "at", Value: cur.At}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: oid}}}},
		}}}
	}
	n := clampLimit(limit, h.cfg.HistorySize)
	if n == 0 {
		return HistoryPage{Messages: []Message{}}, nil
	}
	// One more than asked tells whether there is an older page.
	docs, err := h.messagesBefore(ctx, info.ID, older, n+1)
	if err != nil {
		return HistoryPage{}, err
	}
	var page HistoryPage
	if len(docs) > n {
		docs = docs[1:]
		page.NextBefore = docs[0].ID.Hex()
	}
	page.Messages = make([]Message, len(docs))
	for i := range docs {
		page.Messages[i] = docs[i].message()
	}
	return page, nil
}

// ReplayMessage is a message of a past broadcast with when it was posted in it.
type ReplayMessage struct {
	Message
	// Offset is how long after the broadcast's start it was posted.
	Offset time.Duration `json:"-"`
}

// ReplayQuery selects the messages of a room posted between From and To after Start,
// the start of a broadcast that ended at End.
type ReplayQuery struct {
	RoomID     string
	Start, End time.Time
	From, To   time.Duration // To 0: to End
	// After, a message id, continues a page: of the messages posted at From, only those
	// after it in order.
	After string
	Limit int // default 100, at most 500
}

// ReplayPage is what Replay found, by time.
type ReplayPage struct {
	Messages []ReplayMessage
	// More: the window may hold more messages; the next page is From Next, After NextAfter.
	More      bool
	Next      time.Duration
	NextAfter string
}

// maxHiddenAuthors bounds the authors banned during a broadcast whose messages Replay
// hides: beyond it, the first ones banned are hidden.
const maxHiddenAuthors = 1000

// Replay returns the messages of a past broadcast in a window of its time, oldest first
// (by time, then id, as History): deleted ones excluded, and those of users banned while
// it was live.
func (h *Hub) Replay(ctx context.Context, q ReplayQuery) (ReplayPage, error) {
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	if q.Limit <= 0 {
		q.Limit = 100
	}
	q.Limit = min(q.Limit, 500)
	to := q.End
	if q.To > 0 && q.Start.Add(q.To).Before(to) {
		to = q.Start.Add(q.To)
	}
	from := q.Start.Add(max(q.From, 0))
	if !from.Before(to) {
		return ReplayPage{Messages: []ReplayMessage{}}, nil
	}
	filter := bson.D{
		{Key: "room", Value: q.RoomID}, {Key: "kind", Value: typeMessage}, {Key: "deleted", Value: false},
		{Key: "at", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lt", Value: to}}},
	}
	if q.After != "" {
		after, err := bson.ObjectIDFromHex(q.After)
		if err != nil {
			return ReplayPage{}, fmt.Errorf("%w: after %q is not a message id", ErrInvalid, q.After)
		}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "at", Value: bson.D{{Key: "$gt", Value: from}}}},
			bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}},
		}})
	}
	hidden, err := h.bannedBetween(ctx, q.RoomID, q.Start, q.End)
	if err != nil {
		return ReplayPage{}, err
	}
	if len(hidden) > 0 {
		filter = append(filter, bson.E{Key: "user_id", Value: bson.D{{Key: "$nin", Value: hidden}}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(q.Limit))
	cur, err := h.messages.Find(ctx, filter, opts)
	if err != nil {
		return ReplayPage{}, dbError("read replay chat", err)
	}
	var docs []messageDoc
	if err := cur.All(ctx, &docs); err != nil {
		return ReplayPage{}, dbError("read replay chat", err)
	}
	page := ReplayPage{Messages: make([]ReplayMessage, len(docs))}
	for i := range docs {
		page.Messages[i] = ReplayMessage{Message: docs[i].message(), Offset: docs[i].At.Sub(q.Start)}
	}
	if len(docs) == q.Limit {
		last := docs[len(docs)-1]
		page.More, page.Next, page.NextAfter = true, last.At.Sub(q.Start), last.ID.Hex()
	}
	return page, nil
}

// bannedBetween lists the users banned in a room between start and end.
func (h *Hub) bannedBetween(ctx context.Context, roomID string, start, end time.Time) ([]string, error) {
	cur, err := h.modlog.Find(ctx, bson.D{
		{Key: "room", Value: roomID}, {Key: "action", Value: ActionBan},
		{Key: "at", Value: bson.D{{Key: "$gte", Value: start}, {Key: "$lte", Value: end}}},
	}, options.Find().SetSort(bson.D{{Key: "at", Value: 1}}).SetLimit(maxHiddenAuthors).
		SetProjection(bson.D{{Key: "target_id", Value: 1}}))
	if err != nil {
		return nil, dbError("read bans of the broadcast", err)
	}
	var docs []actionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, dbError("read bans of the broadcast", err)
	}
	out := make([]string, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.TargetID)
	}
	return out, nil
}
