package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/audit"
)

// Format is how a webhook's deliveries are written.
type Format string

// Formats.
const (
	// FormatJSON posts the event as JSON, signed (SignatureHeader).
	FormatJSON Format = "json"
	// FormatSlack posts {"text": "<one readable line>"}, what Slack's (and Mattermost's,
	// Discord's /slack) incoming webhooks take. Signed too when there is a secret.
	FormatSlack Format = "slack"
)

// GlobalID is the webhook id of the global webhook (Config.Global) in the delivery log.
const GlobalID = "global"

// MaxPerRoom bounds a room's webhooks.
const MaxPerRoom = 10

// Webhook is a room's webhook as its owner sees it: never its secret.
type Webhook struct {
	ID        string      `json:"id"`
	RoomID    string      `json:"room_id"`
	URL       string      `json:"url"`
	Format    Format      `json:"format"`
	Events    []string    `json:"events"`
	Created   time.Time   `json:"created"`
	CreatedBy audit.Actor `json:"created_by"`
}

type webhookDoc struct {
	ID       bson.ObjectID `bson:"_id"`
	RoomID   string        `bson:"room_id"`
	RoomSlug string        `bson:"room_slug"`
	URL      string        `bson:"url"`
	Format   Format        `bson:"format"`
	Events   []string      `bson:"events"`
	// Secret signs deliveries; stored as given (signing needs it), never returned.
	Secret    string      `bson:"secret"`
	Created   time.Time   `bson:"created"`
	CreatedBy audit.Actor `bson:"created_by"`
}

func (d *webhookDoc) webhook() Webhook {
	return Webhook{ID: d.ID.Hex(), RoomID: d.RoomID, URL: d.URL, Format: d.Format, Events: d.Events,
		Created: d.Created.UTC(), CreatedBy: d.CreatedBy}
}

// NewWebhook is the input of CreateWebhook.
type NewWebhook struct {
	URL    string
	Format Format   // default FormatJSON
	Events []string // default RoomEventTypes
}

// newSecret is "whsec_" and 32 random bytes in hex.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + hex.EncodeToString(b[:])
}

func checkFormat(f Format) (Format, error) {
	switch f {
	case "":
		return FormatJSON, nil
	case FormatJSON, FormatSlack:
		return f, nil
	}
	return "", invalid("format", "must be %q or %q", FormatJSON, FormatSlack)
}

// checkEvents checks a subscription to some of allowed (all of them when empty).
func checkEvents(events, allowed []string) ([]string, error) {
	if len(events) == 0 {
		return slices.Clone(allowed), nil
	}
	var out []string
	for _, e := range events {
		if !slices.Contains(allowed, e) {
			if knownType(e) {
				return nil, invalid("events", "%s goes to the global webhook only (a room's webhooks take %v)", e, allowed)
			}
			return nil, invalid("events", "unknown event type %q (known: %v)", e, allowed)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// CreateWebhook adds a webhook to room and returns it with its signing secret: the only
// time the secret is shown. The caller has checked that actor may edit the room. Errors:
// *ValidationError (url, format, events, or too many webhooks), ErrUnavailable.
func (d *Dispatcher) CreateWebhook(ctx context.Context, actor audit.Actor, room Room, in NewWebhook) (Webhook, string, error) {
	if room.ID == "" {
		return Webhook{}, "", fmt.Errorf("create webhook: %w: no room", ErrInvalid)
	}
	format, err := checkFormat(in.Format)
	if err != nil {
		return Webhook{}, "", err
	}
	events, err := checkEvents(in.Events, RoomEventTypes)
	if err != nil {
		return Webhook{}, "", err
	}
	u, err := checkURL(ctx, in.URL, d.cfg.AllowPrivate)
	if err != nil {
		return Webhook{}, "", err
	}
	octx, cancel := d.op(ctx)
	n, err := d.hooks.CountDocuments(octx, bson.D{{Key: "room_id", Value: room.ID}})
	cancel()
	if err != nil {
		return Webhook{}, "", dbError("count webhooks", err)
	}
	if n >= MaxPerRoom {
		return Webhook{}, "", invalid("url", "a room has at most %d webhooks", MaxPerRoom)
	}
	secret := newSecret()
	doc := webhookDoc{
		ID: bson.NewObjectID(), RoomID: room.ID, RoomSlug: room.Slug, URL: u.String(), Format: format, Events: events,
		Secret: secret, Created: d.now(), CreatedBy: actor,
	}
	octx, cancel = d.op(ctx)
	defer cancel()
	if _, err := d.hooks.InsertOne(octx, doc); err != nil {
		return Webhook{}, "", dbError("create webhook", err)
	}
	d.log.Info("webhook created", "webhook_id", doc.ID.Hex(), "room_id", room.ID, "host", u.Host, "format", format, "by", actor.ID)
	if d.cfg.Audit != nil {
		d.cfg.Audit.Record(ctx, audit.Entry{
			At: doc.Created, Action: audit.WebhookCreate, Actor: actor,
			Room:    &audit.Room{ID: room.ID, Slug: room.Slug, Title: room.Title},
			Target:  &audit.Target{Kind: audit.KindWebhook, ID: doc.ID.Hex(), Name: u.Host},
			Details: map[string]any{"format": string(format), "events": events},
		})
	}
	return doc.webhook(), secret, nil
}

// Webhooks lists a room's webhooks, oldest first.
func (d *Dispatcher) Webhooks(ctx context.Context, roomID string) ([]Webhook, error) {
	octx, cancel := d.op(ctx)
	defer cancel()
	cur, err := d.hooks.Find(octx, bson.D{{Key: "room_id", Value: roomID}},
		options.Find().SetSort(bson.D{{Key: "created", Value: 1}, {Key: "_id", Value: 1}}).
			SetProjection(bson.D{{Key: "secret", Value: 0}}))
	if err != nil {
		return nil, dbError("list webhooks", err)
	}
	var docs []webhookDoc
	if err := cur.All(octx, &docs); err != nil {
		return nil, dbError("list webhooks", err)
	}
	out := make([]Webhook, 0, len(docs))
	for i := range docs {
		out = append(out, docs[i].webhook())
	}
	return out, nil
}

// GetWebhook returns one of the room's webhooks (ErrNotFound for another room's).
func (d *Dispatcher) GetWebhook(ctx context.Context, roomID, id string) (Webhook, error) {
	doc, err := d.webhookDoc(ctx, roomID, id)
	if err != nil {
		return Webhook{}, err
	}
	return doc.webhook(), nil
}

func (d *Dispatcher) webhookDoc(ctx context.Context, roomID, id string) (webhookDoc, error) {
	var doc webhookDoc
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return doc, fmt.Errorf("webhook %q: %w", id, ErrNotFound)
	}
	filter := bson.D{{Key: "_id", Value: oid}}
	if roomID != "" {
		filter = append(filter, bson.E{Key: "room_id", Value: roomID})
	}
	octx, cancel := d.op(ctx)
	defer cancel()
	err = d.hooks.FindOne(octx, filter).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return doc, fmt.Errorf("webhook %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return doc, dbError("find webhook", err)
	}
	return doc, nil
}

// DeleteWebhook removes one of the room's webhooks. Its pending deliveries are canceled
// by the nodes that hold them, at their next attempt. The caller has checked that actor
// may edit the room.
func (d *Dispatcher) DeleteWebhook(ctx context.Context, actor audit.Actor, room Room, id string) error {
	doc, err := d.webhookDoc(ctx, room.ID, id)
	if err != nil {
		return err
	}
	octx, cancel := d.op(ctx)
	res, err := d.hooks.DeleteOne(octx, bson.D{{Key: "_id", Value: doc.ID}})
	cancel()
	if err != nil {
		return dbError("delete webhook", err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("webhook %s: %w", id, ErrNotFound)
	}
	host := hostOf(doc.URL)
	d.log.Info("webhook deleted", "webhook_id", id, "room_id", room.ID, "host", host, "by", actor.ID)
	if d.cfg.Audit != nil {
		d.cfg.Audit.Record(ctx, audit.Entry{
			At: d.now(), Action: audit.WebhookDelete, Actor: actor,
			Room:   &audit.Room{ID: room.ID, Slug: room.Slug, Title: room.Title},
			Target: &audit.Target{Kind: audit.KindWebhook, ID: id, Name: host},
		})
	}
	return nil
}

// ForgetRoom deletes a deleted room's webhooks (their pending deliveries are canceled at
// their next attempt). It returns how many it deleted.
func (d *Dispatcher) ForgetRoom(ctx context.Context, roomID string) (int64, error) {
	octx, cancel := d.op(ctx)
	defer cancel()
	res, err := d.hooks.DeleteMany(octx, bson.D{{Key: "room_id", Value: roomID}})
	if err != nil {
		return 0, dbError("delete a deleted room's webhooks", err)
	}
	if res.DeletedCount > 0 {
		d.log.Info("webhooks of a deleted room deleted", "room_id", roomID, "count", res.DeletedCount)
	}
	return res.DeletedCount, nil
}
