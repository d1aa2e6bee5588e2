package chat

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Limits of Purge and Bans.
const (
	// MaxPurgeWindow is how far back Purge reaches.
	MaxPurgeWindow = 24 * time.Hour
	// MaxPurge bounds the messages one Purge deletes (the newest first).
	MaxPurge = 500
	maxBans  = 500
)

// Purge deletes target's messages in the room posted within window before now (at most
// MaxPurgeWindow; the newest MaxPurge), typically right after banning them: each leaves
// the history and a "deleted" frame removes it from every client. The rules of
// DeleteMessage apply to each message, and only someone who outranks target purges them
// (see "Limits and moderation"). It returns how many messages it deleted.
func (h *Hub) Purge(ctx context.Context, info Room, actor, target User, window time.Duration) (int, error) {
	ar, err := authorize(info, actor, &target)
	if err != nil {
		return 0, err
	}
	if window <= 0 || window > MaxPurgeWindow {
		return 0, fmt.Errorf("%w: purge window of %s (allowed: up to %s)", ErrInvalid, window, MaxPurgeWindow)
	}
	if err := h.checkNotRestricted(ctx, info, actor); err != nil {
		return 0, err
	}
	now := nowMS()
	opCtx, cancel := h.opContext(ctx)
	defer cancel()
	cur, err := h.messages.Find(opCtx, bson.D{
		{Key: "room", Value: info.ID}, {Key: "user_id", Value: target.ID}, {Key: "deleted", Value: false},
		{Key: "at", Value: bson.D{{Key: "$gte", Value: now.Add(-window)}}},
	}, options.Find().SetSort(bson.D{{Key: "at", Value: -1}}).SetLimit(MaxPurge).
		SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "admin", Value: 1}, {Key: "user_id", Value: 1}}))
	if err != nil {
		return 0, unavailable("find messages to purge", err)
	}
	var docs []messageDoc
	if err := cur.All(opCtx, &docs); err != nil {
		return 0, unavailable("find messages to purge", err)
	}
	ids := bson.A{}
	for _, d := range docs {
		// A message posted while its author was an admin stays for admins to delete.
		if rank(info, User{ID: d.UserID, Admin: d.Admin}) < ar {
			ids = append(ids, d.ID)
		}
	}
	deleted := 0
	if len(ids) > 0 {
		res, err := h.messages.UpdateMany(opCtx,
			bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "room", Value: info.ID}, {Key: "deleted", Value: false}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "deleted", Value: true}, {Key: "deleted_by", Value: actor.ID}, {Key: "deleted_at", Value: now}}}})
		if err != nil {
			return 0, unavailable("purge messages", err)
		}
		deleted = int(res.ModifiedCount)
		r := h.acquire(info)
		for _, id := range ids {
			hex := id.(bson.ObjectID).Hex()
			h.publishEvent(r, typeDeleted, deletedFrame{Type: typeDeleted, ID: hex}, func() { r.deleteMessage(hex) })
		}
		h.release(r)
	}
	if deleted == 0 {
		return 0, nil // nothing happened: nothing to record
	}
	h.recordAction(ctx, info, actor, actionDoc{
		Action: "purge", ActorID: actor.ID, ActorHandle: actor.Handle, TargetID: target.ID, TargetHandle: target.Handle,
		DurationMS: window.Milliseconds(), Count: deleted, At: now,
	})
	return deleted, nil
}

// Ban is a ban or timeout in force in a room, as Bans lists it.
type Ban struct {
	UserID string `json:"user_id"`
	Handle string `json:"handle,omitempty"`
	// Banned is set for a ban; otherwise Until ends a timeout.
	Banned bool       `json:"banned"`
	Until  *time.Time `json:"until,omitempty"`
	Reason string     `json:"reason,omitempty"`
	// By is who set it; ByAdmin that they were an admin, so that only admins lift it.
	By      string    `json:"by"`
	ByAdmin bool      `json:"by_admin,omitempty"`
	At      time.Time `json:"at"`
}

// Bans lists the bans and timeouts in force in the room, newest first (at most 500), to
// those who may moderate it now.
func (h *Hub) Bans(ctx context.Context, info Room, actor User) ([]Ban, error) {
	if _, err := authorize(info, actor, nil); err != nil {
		return nil, err
	}
	if err := h.checkNotRestricted(ctx, info, actor); err != nil {
		return nil, err
	}
	now := nowMS()
	opCtx, cancel := h.opContext(ctx)
	defer cancel()
	cur, err := h.bans.Find(opCtx, bson.D{{Key: "room", Value: info.ID}, {Key: "$or", Value: bson.A{
		bson.D{{Key: "banned", Value: true}}, bson.D{{Key: "until", Value: bson.D{{Key: "$gt", Value: now}}}},
	}}}, options.Find().SetSort(bson.D{{Key: "at", Value: -1}}).SetLimit(maxBans))
	if err != nil {
		return nil, unavailable("read bans", err)
	}
	var docs []banDoc
	if err := cur.All(opCtx, &docs); err != nil {
		return nil, unavailable("read bans", err)
	}
	out := make([]Ban, 0, len(docs))
	for _, d := range docs {
		b := Ban{UserID: d.UserID, Handle: d.Handle, Banned: d.Banned, Reason: d.Reason, By: d.By, ByAdmin: d.ByAdmin, At: d.At.UTC()}
		if !d.Banned {
			until := d.Until.UTC()
			b.Until = &until
		}
		out = append(out, b)
	}
	return out, nil
}
