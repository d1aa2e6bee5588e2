package webhook

import (
	"bytes"
	"context"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Queues: this node's pending deliveries, one FIFO per webhook and room, each worked by
// one goroutine at a time, so that a room's events reach a webhook in the order they were
// stored while rooms and webhooks do not wait for each other.

// queue is the FIFO of one webhook and room.
type queue struct {
	key     string
	items   []*deliveryDoc
	running bool
	busy    bool // items[0] is being delivered
}

// resume queues this node's pending deliveries.
func (d *Dispatcher) resume(ctx context.Context) (int, error) {
	octx, cancel := context.WithTimeout(ctx, 4*d.cfg.OpTimeout)
	defer cancel()
	cur, err := d.deliveries.Find(octx, bson.D{{Key: "node", Value: d.node()}, {Key: "status", Value: StatusPending}},
		options.Find().SetSort(bson.D{{Key: "queued", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return 0, dbError("find pending deliveries", err)
	}
	var docs []deliveryDoc
	if err := cur.All(octx, &docs); err != nil {
		return 0, dbError("read pending deliveries", err)
	}
	for i := range docs {
		d.enqueue(&docs[i])
	}
	return len(docs), nil
}

// enqueue adds a pending delivery to its webhook and room's queue, in order, and starts
// the queue's worker if it is idle.
func (d *Dispatcher) enqueue(doc *deliveryDoc) {
	key := doc.WebhookID + "/" + doc.RoomID
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.queues[key]
	if q == nil {
		q = &queue{key: key}
		d.queues[key] = q
	}
	for _, it := range q.items {
		if it.ID == doc.ID {
			return
		}
	}
	// In (queued, _id) order, but never before the delivery being worked on.
	i := len(q.items)
	for i > 0 && (i > 1 || !q.busy) && before(doc, q.items[i-1]) {
		i--
	}
	q.items = slices.Insert(q.items, i, doc)
	if !q.running {
		q.running = true
		d.workers.Add(1)
		go d.work(q)
	}
}

func before(a, b *deliveryDoc) bool {
	if !a.Queued.Equal(b.Queued) {
		return a.Queued.Before(b.Queued)
	}
	return bytes.Compare(a.ID[:], b.ID[:]) < 0
}

// work delivers q's deliveries one after the other until it is empty or Run stops.
func (d *Dispatcher) work(q *queue) {
	defer d.workers.Done()
	ctx := d.runCtx
	for {
		d.mu.Lock()
		if len(q.items) == 0 || ctx.Err() != nil {
			q.running = false
			if len(q.items) == 0 {
				delete(d.queues, q.key)
			}
			d.mu.Unlock()
			return
		}
		doc := q.items[0]
		q.busy = true
		d.mu.Unlock()

		d.deliver(ctx, doc)

		d.mu.Lock()
		q.busy = false
		if ctx.Err() == nil && len(q.items) > 0 && q.items[0] == doc {
			q.items = q.items[1:]
		}
		d.mu.Unlock()
	}
}
