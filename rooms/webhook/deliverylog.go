package webhook

import (
	"context"
	"encoding/json"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/internal/cursor"
)

// Delivery log: the webhook_deliveries documents, as the API lists them (Deliveries), and
// their pruning after LogRetention.

// Delivery states.
const (
	StatusPending   = "pending"   // waiting for its turn or its next attempt
	StatusDelivered = "delivered" // the receiver answered 2xx
	StatusFailed    = "failed"    // given up after GiveUpAfter
	StatusCanceled  = "canceled"  // its webhook was deleted (or the global one removed)
)

// deliveryDoc is one delivery as stored: the queue entry while pending, the log entry once
// done.
type deliveryDoc struct {
	ID        bson.ObjectID `bson:"_id"`
	EventID   string        `bson:"event_id"`
	Type      string        `bson:"type"`
	WebhookID string        `bson:"webhook_id"` // GlobalID or a webhook's hex id
	RoomID    string        `bson:"room_id"`
	RoomSlug  string        `bson:"room_slug"`
	Format    Format        `bson:"format"`
	Body      string        `bson:"body"` // exactly what is posted
	Status    string        `bson:"status"`
	Attempts  int           `bson:"attempts"`
	// LastStatus is the last answer's HTTP status (0: none); LastError why it failed.
	LastStatus  int        `bson:"last_status"`
	LastError   string     `bson:"last_error"`
	Created     time.Time  `bson:"created"` // the event's time
	Queued      time.Time  `bson:"queued"`  // with _id, the order of a webhook and room's deliveries
	NextAttempt time.Time  `bson:"next_attempt"`
	LastAttempt *time.Time `bson:"last_attempt"`
	Done        *time.Time `bson:"done"` // when delivered, failed or canceled
	// Node is the process that writes this document: the one that created it, or the one
	// that adopted it (by a unique insert into webhook_claims) after that one died.
	Node string `bson:"node"`
	// RedeliveryOf is the delivery this one sends again (manage.go), "" for a first one.
	RedeliveryOf string `bson:"redelivery_of,omitempty"`
}

// Delivery is one event sent to one webhook, as the delivery log shows it.
type Delivery struct {
	ID        string `json:"id"`
	EventID   string `json:"event_id"`
	Type      string `json:"type"`
	WebhookID string `json:"webhook_id"`
	RoomID    string `json:"room_id"`
	RoomSlug  string `json:"room_slug"`
	Format    Format `json:"format"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	// LastStatus is the HTTP status of the last answer (absent when none came).
	LastStatus int    `json:"last_status,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	// Created is the event's time; Queued when its deliveries were stored.
	Created     time.Time  `json:"created"`
	Queued      time.Time  `json:"queued"`
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	// NextAttempt is set while pending.
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	Done        *time.Time `json:"done,omitempty"`
	Node        string     `json:"node"`
	// RedeliveryOf is the id of the delivery this one sends again, on request.
	RedeliveryOf string `json:"redelivery_of,omitempty"`
	// Body is what is posted (Bodies in DeliveryQuery).
	Body json.RawMessage `json:"body,omitempty"`
}

func (doc *deliveryDoc) delivery(withBody bool) Delivery {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	out := Delivery{
		ID: doc.ID.Hex(), EventID: doc.EventID, Type: doc.Type, WebhookID: doc.WebhookID, RoomID: doc.RoomID,
		RoomSlug: doc.RoomSlug, Format: doc.Format, Status: doc.Status, Attempts: doc.Attempts,
		LastStatus: doc.LastStatus, LastError: doc.LastError, Created: doc.Created.UTC(), Queued: doc.Queued.UTC(),
		LastAttempt: utc(doc.LastAttempt), Done: utc(doc.Done), Node: doc.Node, RedeliveryOf: doc.RedeliveryOf,
	}
	if doc.Status == StatusPending {
		out.NextAttempt = utc(&doc.NextAttempt)
	}
	if withBody && json.Valid([]byte(doc.Body)) {
		out.Body = json.RawMessage(doc.Body)
	}
	return out
}

// DeliveryQuery selects deliveries for Deliveries. Empty fields select all.
type DeliveryQuery struct {
	WebhookID string // GlobalID or a webhook's id
	RoomID    string
	Status    string
	// Bodies includes what was posted.
	Bodies bool
	// Limit is the page size: default 50, at most 200.
	Limit int
	// Cursor is DeliveryPage.Next of the previous page.
	Cursor string
}

// DeliveryPage is one page of the delivery log, newest first.
type DeliveryPage struct {
	Deliveries []Delivery `json:"deliveries"`
	Next       string     `json:"next,omitempty"`
}

type deliveryCursor struct {
	Queued time.Time     `json:"q"`
	ID     bson.ObjectID `json:"i"`
}

// Deliveries lists the delivery log, newest first. Callers check who may see what (a
// room's owner its webhooks' deliveries, admins all).
func (d *Dispatcher) Deliveries(ctx context.Context, q DeliveryQuery) (DeliveryPage, error) {
	filter := bson.D{}
	if q.WebhookID != "" {
		filter = append(filter, bson.E{Key: "webhook_id", Value: q.WebhookID})
	}
	if q.RoomID != "" {
		filter = append(filter, bson.E{Key: "room_id", Value: q.RoomID})
	}
	switch q.Status {
	case "":
	case StatusPending, StatusDelivered, StatusFailed, StatusCanceled:
		filter = append(filter, bson.E{Key: "status", Value: q.Status})
	default:
		return DeliveryPage{}, invalid("status", "must be %s, %s, %s or %s", StatusPending, StatusDelivered, StatusFailed, StatusCanceled)
	}
	if q.Cursor != "" {
		c, ok := cursor.Decode[deliveryCursor](q.Cursor)
		if !ok {
			return DeliveryPage{}, invalid("cursor", "is not a cursor this server gave out")
		}
		filter = append(filter, cursor.Older("queued", c.Queued, c.ID)...)
	}
	limit := cursor.Limit(q.Limit, 50, 200)
	opts := options.Find().SetSort(bson.D{{Key: "queued", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit + 1))
	if !q.Bodies {
		opts.SetProjection(bson.D{{Key: "body", Value: 0}})
	}
	octx, cancel := d.op(ctx)
	defer cancel()
	cur, err := d.deliveries.Find(octx, filter, opts)
	if err != nil {
		return DeliveryPage{}, dbError("list deliveries", err)
	}
	var docs []deliveryDoc
	if err := cur.All(octx, &docs); err != nil {
		return DeliveryPage{}, dbError("list deliveries", err)
	}
	var page DeliveryPage
	page.Deliveries, page.Next = cursor.Page(docs, limit, func(d *deliveryDoc) Delivery { return d.delivery(q.Bodies) },
		func(d *deliveryDoc) any { return deliveryCursor{Queued: d.Queued, ID: d.ID} })
	return page, nil
}

// pruneLog deletes the deliveries finished more than LogRetention ago, and the claims of
// adopted ones as old, and says how many deliveries it deleted.
func (d *Dispatcher) pruneLog(ctx context.Context) (int64, error) {
	cutoff := d.now().Add(-d.cfg.LogRetention)
	octx, cancel := d.op(ctx)
	defer cancel()
	res, err := d.deliveries.DeleteMany(octx, bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{StatusDelivered, StatusFailed, StatusCanceled}}}},
		{Key: "done", Value: bson.D{{Key: "$lt", Value: cutoff}}},
	})
	if err != nil {
		return 0, dbError("prune the delivery log", err)
	}
	if _, err := d.claims.DeleteMany(octx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: cutoff}}}}); err != nil {
		return res.DeletedCount, dbError("prune adoption claims", err)
	}
	return res.DeletedCount, nil
}
