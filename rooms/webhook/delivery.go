package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Delivery: one delivery at a time per queue, attempted until the receiver answers 2xx,
// GiveUpAfter passes or its webhook is deleted, with backoff between attempts. The node
// in the document's node field is its only writer (save).

// deliver works on one delivery until it is delivered, failed or canceled, another node
// took it over, or ctx ends (it is then left pending for the next start).
func (d *Dispatcher) deliver(ctx context.Context, doc *deliveryDoc) {
	log := d.log.With("delivery_id", doc.ID.Hex(), "event_id", doc.EventID, "type", doc.Type,
		"webhook_id", doc.WebhookID, "room_id", doc.RoomID)
	gated := false
	dbWait := min(d.cfg.BackoffMin, time.Second)
	for {
		if !sleep(ctx, doc.NextAttempt.Sub(d.cfg.Now())) {
			return
		}
		if !gated {
			// Per-room order across nodes: an earlier pending delivery of this webhook
			// and room held by another node goes first.
			earlier, err := d.earlierElsewhere(ctx, doc)
			if err != nil {
				log.Debug("delivery order not checked; retrying", "err", err)
				if !sleep(ctx, dbWait) {
					return
				}
				continue
			}
			if earlier {
				if !sleep(ctx, d.cfg.PollInterval) {
					return
				}
				continue
			}
			gated = true
		}
		ep, err := d.endpoint(ctx, doc.WebhookID)
		now := d.now()
		switch {
		case errors.Is(err, errGone):
			doc.Status, doc.LastError, doc.Done = StatusCanceled, err.Error(), &now
			if d.save(ctx, doc, log) {
				log.Info("webhook delivery canceled", "reason", err.Error())
			}
			return
		case err != nil:
			log.Debug("webhook not looked up; retrying", "err", err)
			if !sleep(ctx, dbWait) {
				return
			}
			continue
		}

		res := d.attempt(ctx, ep, doc)
		saveCtx := ctx
		if ctx.Err() != nil {
			if !res.ok {
				return // interrupted: not counted, tried again at the next start
			}
			// Delivered just as Run stopped: record it, so that it is not sent again.
			var cancel context.CancelFunc
			saveCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), d.cfg.DrainTimeout)
			defer cancel()
		}
		now = d.now()
		doc.Attempts++
		doc.LastAttempt, doc.LastStatus, doc.LastError = &now, res.status, res.err
		deadline := doc.Queued.Add(d.cfg.GiveUpAfter)
		switch {
		case res.ok:
			doc.Status, doc.Done = StatusDelivered, &now
		case !now.Before(deadline):
			doc.Status, doc.Done = StatusFailed, &now
		default:
			doc.NextAttempt = now.Add(min(d.backoff(doc.Attempts, res.retryAfter), deadline.Sub(now)))
		}
		if !d.save(saveCtx, doc, log) {
			return
		}
		attrs := []any{"host", hostOf(ep.URL), "attempts", doc.Attempts, "status", res.status}
		switch doc.Status {
		case StatusDelivered:
			d.delivered.Add(1)
			log.Debug("webhook delivered", attrs...)
			return
		case StatusFailed:
			d.failed.Add(1)
			log.Error("webhook delivery given up", append(attrs, "err", res.err, "after", now.Sub(doc.Queued).Round(time.Second))...)
			return
		}
		log.Warn("webhook delivery failed; will retry", append(attrs, "err", res.err, "next_attempt", doc.NextAttempt)...)
	}
}

// backoff is the wait after the n-th failed attempt.
func (d *Dispatcher) backoff(n int, retryAfter time.Duration) time.Duration {
	w := d.cfg.BackoffMin
	for i := 1; i < n && w < d.cfg.BackoffMax; i++ {
		w *= 2
	}
	w = min(w, d.cfg.BackoffMax)
	w = time.Duration(float64(w) * (0.8 + 0.4*rand.Float64()))
	if retryAfter > w {
		w = min(retryAfter, d.cfg.BackoffMax)
	}
	return max(w, time.Millisecond)
}

// attempt posts the delivery once.
func (d *Dispatcher) attempt(ctx context.Context, ep Endpoint, doc *deliveryDoc) attemptResult {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return attemptResult{err: "shutting down"}
	}
	defer func() { <-d.sem }()
	body := []byte(doc.Body)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "onair-webhooks/1")
	h.Set(EventHeader, doc.Type)
	h.Set(EventIDHeader, doc.EventID)
	h.Set(DeliveryHeader, doc.ID.Hex())
	if ep.Secret != "" {
		h.Set(SignatureHeader, Sign(ep.Secret, d.cfg.Now(), body))
	}
	actx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	return post(actx, d.client, ep.URL, h, body)
}

// save writes the delivery's state (this node is its only writer), retrying while
// MongoDB is unreachable. It returns false if ctx ended first or another node adopted
// the delivery (it is then that node's).
func (d *Dispatcher) save(ctx context.Context, doc *deliveryDoc, log *slog.Logger) bool {
	set := bson.D{
		{Key: "status", Value: doc.Status}, {Key: "attempts", Value: doc.Attempts},
		{Key: "last_status", Value: doc.LastStatus}, {Key: "last_error", Value: doc.LastError},
		{Key: "next_attempt", Value: doc.NextAttempt}, {Key: "last_attempt", Value: doc.LastAttempt},
		{Key: "done", Value: doc.Done},
	}
	wait := min(d.cfg.BackoffMin, time.Second)
	for attempt := 1; ; attempt++ {
		octx, cancel := d.op(ctx)
		res, err := d.deliveries.UpdateOne(octx, bson.D{{Key: "_id", Value: doc.ID}, {Key: "node", Value: d.node()}},
			bson.D{{Key: "$set", Value: set}})
		cancel()
		if err == nil {
			if res.MatchedCount == 0 {
				log.Warn("webhook delivery taken over by another node; leaving it")
				return false
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if attempt == 1 || attempt%10 == 0 {
			log.Warn("webhook delivery state not saved yet; retrying", "err", err, "attempts", attempt)
		}
		if !sleep(ctx, wait) {
			return false
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// earlierElsewhere reports whether another node holds an earlier pending delivery of the
// same webhook and room.
func (d *Dispatcher) earlierElsewhere(ctx context.Context, doc *deliveryDoc) (bool, error) {
	octx, cancel := d.op(ctx)
	defer cancel()
	n, err := d.deliveries.CountDocuments(octx, bson.D{
		{Key: "webhook_id", Value: doc.WebhookID}, {Key: "room_id", Value: doc.RoomID},
		{Key: "status", Value: StatusPending}, {Key: "node", Value: bson.D{{Key: "$ne", Value: d.node()}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "queued", Value: bson.D{{Key: "$lt", Value: doc.Queued}}}},
			bson.D{{Key: "queued", Value: doc.Queued}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: doc.ID}}}},
		}},
	}, options.Count().SetLimit(1))
	if err != nil {
		return false, dbError("check delivery order", err)
	}
	return n > 0, nil
}

// errGone: the delivery's webhook no longer exists.
var errGone = errors.New("webhook deleted")

// endpoint is where a delivery goes now.
func (d *Dispatcher) endpoint(ctx context.Context, webhookID string) (Endpoint, error) {
	if webhookID == GlobalID {
		if d.cfg.Global.URL == "" {
			return Endpoint{}, fmt.Errorf("%w: no global webhook is configured any more", errGone)
		}
		return d.cfg.Global, nil
	}
	doc, err := d.webhookDoc(ctx, "", webhookID)
	if errors.Is(err, ErrNotFound) {
		return Endpoint{}, errGone
	}
	if err != nil {
		return Endpoint{}, err
	}
	return Endpoint{URL: doc.URL, Secret: doc.Secret, Format: doc.Format}, nil
}

// sleep waits for d or ctx; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
