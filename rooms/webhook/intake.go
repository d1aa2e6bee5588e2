package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/mongodb"
)

// Intake: Publish only queues an event in memory; one goroutine (runIntake) stores each
// event's deliveries, one document per webhook that wants it, in the order published,
// retrying while MongoDB is away. Only a stored delivery is ever sent, and at shutdown
// the drain stores what is left for the next start.

// Publish queues an event for every webhook that wants it: the global one and the
// room's. It never blocks: the event is stored by Run (retrying while MongoDB is
// unreachable) and only then delivered. When the queue is full the event is dropped,
// logged and counted, and ErrQueueFull returned.
func (d *Dispatcher) Publish(e Event) error {
	if !knownType(e.Type) {
		return fmt.Errorf("publish: %w: unknown event type %q", ErrInvalid, e.Type)
	}
	if e.Room.ID == "" {
		return fmt.Errorf("publish %s: %w: no room", e.Type, ErrInvalid)
	}
	if e.ID == "" {
		e.ID = "evt_" + bson.NewObjectID().Hex()
	}
	if e.Created.IsZero() {
		e.Created = d.cfg.Now()
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return fmt.Errorf("publish %s: marshal data: %w", e.Type, err)
	}
	ev := &event{id: e.ID, typ: e.Type, created: e.Created.UTC().Truncate(time.Millisecond), room: e.Room, data: data}
	select {
	case d.intake <- ev:
		return nil
	default:
		n := d.dropped.Add(1)
		d.log.Error("webhook event dropped: queue full", "event_id", ev.id, "type", ev.typ, "room_id", ev.room.ID, "dropped_total", n)
		return ErrQueueFull
	}
}

// runIntake stores published events, in order, and queues their deliveries.
func (d *Dispatcher) runIntake(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			d.drainIntake()
			return
		case ev := <-d.intake:
			docs, err := d.persist(ctx, ev)
			if err != nil {
				if ctx.Err() != nil {
					d.drainIntake(ev)
					return
				}
				n := d.dropped.Add(1)
				d.log.Error("webhook event dropped: not stored", "event_id", ev.id, "type", ev.typ, "room_id", ev.room.ID, "err", err, "dropped_total", n)
				continue
			}
			for _, doc := range docs {
				d.enqueue(doc)
			}
		}
	}
}

// drainIntake stores the events still queued at shutdown (first), for up to
// DrainTimeout; their deliveries go out at the next start. The rest are dropped.
func (d *Dispatcher) drainIntake(first ...*event) {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.DrainTimeout)
	defer cancel()
	pending := first
	for {
		if len(pending) == 0 {
			select {
			case ev := <-d.intake:
				pending = append(pending, ev)
			default:
				return
			}
		}
		ev := pending[0]
		pending = pending[1:]
		if _, err := d.persist(ctx, ev); err != nil {
			n := d.dropped.Add(1)
			d.log.Error("webhook event dropped: not stored by the shutdown deadline", "event_id", ev.id, "type", ev.typ,
				"room_id", ev.room.ID, "err", err, "dropped_total", n)
		}
	}
}

type target struct {
	id     string
	format Format
}

// targets are the webhooks that want ev: the global one and the room's.
func (d *Dispatcher) targets(ctx context.Context, ev *event) ([]target, error) {
	var out []target
	if g := d.cfg.Global; g.URL != "" && slices.Contains(g.Events, ev.typ) {
		out = append(out, target{id: GlobalID, format: g.Format})
	}
	octx, cancel := d.op(ctx)
	defer cancel()
	cur, err := d.hooks.Find(octx, bson.D{{Key: "room_id", Value: ev.room.ID}},
		options.Find().SetSort(bson.D{{Key: "created", Value: 1}, {Key: "_id", Value: 1}}).
			SetProjection(bson.D{{Key: "format", Value: 1}, {Key: "events", Value: 1}}))
	if err != nil {
		return nil, dbError("find the room's webhooks", err)
	}
	var docs []webhookDoc
	if err := cur.All(octx, &docs); err != nil {
		return nil, dbError("read the room's webhooks", err)
	}
	for _, h := range docs {
		if slices.Contains(h.Events, ev.typ) {
			out = append(out, target{id: h.ID.Hex(), format: h.Format})
		}
	}
	return out, nil
}

// persist stores ev's deliveries, retrying with backoff while MongoDB is unreachable,
// until they are stored or ctx ends. Other errors are retried a few times.
func (d *Dispatcher) persist(ctx context.Context, ev *event) ([]*deliveryDoc, error) {
	var docs []*deliveryDoc
	stored := 0
	wait := min(d.cfg.BackoffMin/10, time.Second)
	refused := 0
	for attempt := 1; ; attempt++ {
		err := func() error {
			if docs == nil {
				ts, err := d.targets(ctx, ev)
				if err != nil {
					return err
				}
				docs = d.build(ev, ts)
			}
			for ; stored < len(docs); stored++ {
				octx, cancel := d.op(ctx)
				_, err := d.deliveries.InsertOne(octx, docs[stored])
				cancel()
				if err != nil && !mongodb.IsDup(err) { // a duplicate: an earlier attempt landed
					return dbError("store delivery", err)
				}
			}
			return nil
		}()
		if err == nil {
			if attempt > 1 {
				d.log.Info("webhook event stored after retries", "event_id", ev.id, "attempts", attempt)
			}
			return docs, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if !errors.Is(err, ErrUnavailable) {
			if refused++; refused >= 5 {
				return nil, err
			}
		}
		if attempt == 1 || attempt%10 == 0 {
			d.log.Warn("webhook event not stored yet; will retry", "event_id", ev.id, "type", ev.typ, "attempts", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// build makes ev's delivery documents, with ids and order fixed once.
func (d *Dispatcher) build(ev *event, ts []target) []*deliveryDoc {
	queued := d.now()
	if queued.Before(d.lastQueued) {
		queued = d.lastQueued
	}
	d.lastQueued = queued
	docs := make([]*deliveryDoc, 0, len(ts))
	for _, t := range ts {
		docs = append(docs, &deliveryDoc{
			ID: bson.NewObjectID(), EventID: ev.id, Type: ev.typ, WebhookID: t.id, RoomID: ev.room.ID, RoomSlug: ev.room.Slug,
			Format: t.format, Body: string(ev.body(t.format, d.cfg.PublicURL)), Status: StatusPending,
			Created: ev.created, Queued: queued, NextAttempt: queued, Node: d.node(),
		})
	}
	return docs
}
