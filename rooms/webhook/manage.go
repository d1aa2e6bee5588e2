package webhook

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/audit"
)

// What owners and admins do to webhooks after creating them: edit one, send it a test
// event, send a delivery again. A test and a redelivery are new delivery documents
// written by this node, queued like any other (so the per-room order holds): the delivery
// log shows them, and a redelivery names the one it repeats. An edit sets the webhook's
// whole edited state at once, so that concurrent edits leave one of them, never a mix
// that nobody asked for (doc.go, Collections); deliveries read the webhook at every
// attempt, so pending ones go to the new URL with the new secret, in the format they
// were written in.

// WebhookUpdate changes the fields that are set (Events nil: unchanged).
type WebhookUpdate struct {
	URL    *string
	Format *Format
	Events []string
}

// UpdateWebhook edits one of the room's webhooks. The caller has checked that actor may
// edit the room. Errors: *ValidationError, ErrNotFound, ErrUnavailable.
func (d *Dispatcher) UpdateWebhook(ctx context.Context, actor audit.Actor, room Room, id string, in WebhookUpdate) (Webhook, error) {
	doc, err := d.webhookDoc(ctx, room.ID, id)
	if err != nil {
		return Webhook{}, err
	}
	set := bson.D{}
	details := map[string]any{}
	var host string
	if in.URL != nil {
		u, err := checkURL(ctx, *in.URL, d.cfg.AllowPrivate)
		if err != nil {
			return Webhook{}, err
		}
		if u.String() != doc.URL {
			set = append(set, bson.E{Key: "url", Value: u.String()})
			host = u.Host
			details["host"] = u.Host
		}
	}
	if in.Format != nil {
		f, err := checkFormat(*in.Format)
		if err != nil {
			return Webhook{}, err
		}
		if f != doc.Format {
			set = append(set, bson.E{Key: "format", Value: f})
			details["format"] = string(f)
		}
	}
	if in.Events != nil {
		events, err := checkEvents(in.Events, RoomEventTypes)
		if err != nil {
			return Webhook{}, err
		}
		set = append(set, bson.E{Key: "events", Value: events})
		details["events"] = events
	}
	if len(set) == 0 {
		return doc.webhook(), nil
	}
	octx, cancel := d.op(ctx)
	defer cancel()
	res, err := d.hooks.UpdateOne(octx, bson.D{{Key: "_id", Value: doc.ID}, {Key: "room_id", Value: room.ID}}, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return Webhook{}, dbError("update webhook", err)
	}
	if res.MatchedCount == 0 {
		return Webhook{}, fmt.Errorf("webhook %s: %w", id, ErrNotFound)
	}
	after, err := d.webhookDoc(ctx, room.ID, id)
	if err != nil {
		return Webhook{}, err
	}
	if host == "" {
		host = hostOf(after.URL)
	}
	d.log.Info("webhook updated", "webhook_id", id, "room_id", room.ID, "host", host, "by", actor.ID)
	d.record(ctx, actor, audit.WebhookUpdate, room, id, host, details)
	return after.webhook(), nil
}

// SendTest queues a webhook.test event for one of the room's webhooks, signed and
// delivered like any other, and returns its delivery as first stored. The caller has
// checked that actor may edit the room.
func (d *Dispatcher) SendTest(ctx context.Context, actor audit.Actor, room Room, id string) (Delivery, error) {
	doc, err := d.webhookDoc(ctx, room.ID, id)
	if err != nil {
		return Delivery{}, err
	}
	data, err := jsonData(TestData{WebhookID: id, Message: "A test event sent from onair on request: this webhook receives events.",
		Actor: UserRef{ID: actor.ID, Handle: actor.Handle}})
	if err != nil {
		return Delivery{}, err
	}
	now := d.now()
	ev := &event{id: "evt_" + bson.NewObjectID().Hex(), typ: TestEvent, created: now, room: room, data: data}
	del := &deliveryDoc{
		ID: bson.NewObjectID(), EventID: ev.id, Type: TestEvent, WebhookID: id, RoomID: room.ID, RoomSlug: room.Slug,
		Format: doc.Format, Body: string(ev.body(doc.Format, d.cfg.PublicURL)), Status: StatusPending,
		Created: now, Queued: now, NextAttempt: now, Node: d.node(),
	}
	if err := d.store(ctx, del); err != nil {
		return Delivery{}, err
	}
	d.log.Info("webhook test queued", "webhook_id", id, "room_id", room.ID, "delivery_id", del.ID.Hex(), "by", actor.ID)
	d.record(ctx, actor, audit.WebhookTest, room, id, hostOf(doc.URL), map[string]any{"delivery": del.ID.Hex()})
	return del.delivery(false), nil
}

// Redelivery names a delivery to send again: RoomID and WebhookID, when set, must be
// its room's and webhook's (a room owner's request); admins leave them empty.
type Redelivery struct {
	DeliveryID string
	RoomID     string
	WebhookID  string
}

// Redeliver sends a finished delivery again, to its webhook as it is now: a new delivery
// with the same event id and body (receivers drop duplicates by Onair-Event-Id). A
// pending delivery is still being tried, and a canceled one's webhook is gone: neither is
// sent again. The caller has checked that actor may manage the delivery's webhook.
// Errors: ErrNotFound, *ValidationError (the delivery's state), ErrUnavailable.
func (d *Dispatcher) Redeliver(ctx context.Context, actor audit.Actor, in Redelivery) (Delivery, error) {
	oid, err := bson.ObjectIDFromHex(in.DeliveryID)
	if err != nil {
		return Delivery{}, fmt.Errorf("delivery %q: %w", in.DeliveryID, ErrNoDelivery)
	}
	filter := bson.D{{Key: "_id", Value: oid}}
	if in.RoomID != "" {
		filter = append(filter, bson.E{Key: "room_id", Value: in.RoomID})
	}
	if in.WebhookID != "" {
		filter = append(filter, bson.E{Key: "webhook_id", Value: in.WebhookID})
	}
	var old deliveryDoc
	octx, cancel := d.op(ctx)
	err = d.deliveries.FindOne(octx, filter).Decode(&old)
	cancel()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Delivery{}, fmt.Errorf("delivery %s: %w", in.DeliveryID, ErrNoDelivery)
	}
	if err != nil {
		return Delivery{}, dbError("find delivery", err)
	}
	switch old.Status {
	case StatusPending:
		return Delivery{}, invalid("delivery", "is still pending: it is retried until %s", old.Queued.Add(d.cfg.GiveUpAfter).UTC().Format("15:04:05 UTC"))
	case StatusCanceled:
		return Delivery{}, invalid("delivery", "was canceled: its webhook is gone")
	}
	ep, err := d.endpoint(ctx, old.WebhookID)
	if errors.Is(err, errGone) {
		return Delivery{}, invalid("delivery", "its webhook is gone")
	}
	if err != nil {
		return Delivery{}, err
	}
	now := d.now()
	del := &deliveryDoc{
		ID: bson.NewObjectID(), EventID: old.EventID, Type: old.Type, WebhookID: old.WebhookID, RoomID: old.RoomID,
		RoomSlug: old.RoomSlug, Format: old.Format, Body: old.Body, Status: StatusPending, Created: old.Created,
		Queued: now, NextAttempt: now, Node: d.node(), RedeliveryOf: old.ID.Hex(),
	}
	if err := d.store(ctx, del); err != nil {
		return Delivery{}, err
	}
	d.log.Info("webhook delivery sent again", "delivery_id", del.ID.Hex(), "redelivery_of", old.ID.Hex(),
		"webhook_id", old.WebhookID, "room_id", old.RoomID, "by", actor.ID)
	d.record(ctx, actor, audit.WebhookRedeliver, Room{ID: old.RoomID, Slug: old.RoomSlug}, old.WebhookID, hostOf(ep.URL),
		map[string]any{"delivery": old.ID.Hex(), "new_delivery": del.ID.Hex(), "type": old.Type})
	return del.delivery(false), nil
}

// maxPendingOnRequest bounds the deliveries of a webhook waiting to be sent when a test or
// a redelivery is asked for: clicking faster than a receiver answers does not grow its
// queue without end.
const maxPendingOnRequest = 20

// store inserts a delivery made on request and queues it on this node, once Run runs
// (before that, Run's resume picks it up).
func (d *Dispatcher) store(ctx context.Context, del *deliveryDoc) error {
	octx, cancel := d.op(ctx)
	n, err := d.deliveries.CountDocuments(octx, bson.D{{Key: "webhook_id", Value: del.WebhookID}, {Key: "status", Value: StatusPending}},
		options.Count().SetLimit(maxPendingOnRequest))
	cancel()
	if err != nil {
		return dbError("count pending deliveries", err)
	}
	if n >= maxPendingOnRequest {
		return invalid("delivery", "the webhook has %d deliveries waiting already: let them go out first", n)
	}
	octx, cancel = d.op(ctx)
	_, err = d.deliveries.InsertOne(octx, del)
	cancel()
	if err != nil {
		return dbError("store delivery", err)
	}
	d.mu.Lock()
	started := d.started
	d.mu.Unlock()
	if started {
		d.enqueue(del)
	}
	return nil
}

// record tells Config.Audit of an action on a webhook.
func (d *Dispatcher) record(ctx context.Context, actor audit.Actor, action string, room Room, id, host string, details map[string]any) {
	if d.cfg.Audit == nil {
		return
	}
	e := audit.Entry{At: d.now(), Action: action, Actor: actor, Target: &audit.Target{Kind: audit.KindWebhook, ID: id, Name: host}}
	if len(details) > 0 {
		e.Details = details
	}
	if room.ID != "" {
		e.Room = &audit.Room{ID: room.ID, Slug: room.Slug, Title: room.Title}
	}
	d.cfg.Audit.Record(ctx, e)
}
