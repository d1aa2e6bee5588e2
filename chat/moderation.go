package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/audit"
)

// Limits of moderation arguments.
const (
	MaxTimeout  = 14 * 24 * time.Hour
	MaxSlowMode = time.Hour
	maxReason   = 200 // runes
)

// authorize checks that actor moderates the room and, for a target, outranks it: the
// owner, moderators and admins moderate; a moderator cannot act on the owner, another
// moderator or an admin, nor the owner on an admin, nor anyone on themselves.
func authorize(info Room, actor User, target *User) error {
	ar := rank(info, actor)
	if ar == 0 {
		return fmt.Errorf("%w: only the room owner, its moderators and admins moderate", ErrForbidden)
	}
	if target == nil {
		return nil
	}
	if target.ID == "" {
		return fmt.Errorf("%w: no target user", ErrInvalid)
	}
	if target.ID == actor.ID || rank(info, *target) >= ar {
		return fmt.Errorf("%w: cannot moderate a user of the same or a higher rank", ErrForbidden)
	}
	return nil
}

func cleanReason(s string) (string, error) {
	s = cleanText(s)
	if utf8.RuneCountInString(s) > maxReason {
		return "", fmt.Errorf("%w: reason longer than %d characters", ErrInvalid, maxReason)
	}
	return s, nil
}

func nowMS() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// publishEvent broadcasts a frame of this node to the room's local sockets, applying
// change to the room's cached state first, and queues it for the other nodes.
func (h *Hub) publishEvent(r *room, typ string, frame any, change func()) {
	data := marshal(frame)
	r.publish(textFrame(data), func() bool {
		if change != nil {
			change()
		}
		return true
	})
	h.w.event(event{Room: r.id, Type: typ, Frame: data})
}

// recordAction writes a moderation log entry and tells Config.Audit. The action has taken
// effect already, so a failed write is queued and retried in the background rather than
// reported.
func (h *Hub) recordAction(ctx context.Context, info Room, actor User, a actionDoc) {
	a.ID, a.Room, a.Node = bson.NewObjectID(), info.ID, h.cfg.NodeID
	octx, cancel := h.opContext(ctx)
	defer cancel()
	if _, err := h.modlog.InsertOne(octx, a); err != nil {
		h.log.Warn("chat: moderation log write failed, queued for retry", "room", info.ID, "action", a.Action, "err", err)
		h.w.action(a)
	}
	h.log.Info("chat: moderation", "room", info.ID, "slug", info.Slug, "action", a.Action,
		"actor", a.ActorID, "target", a.TargetID, "message_id", a.MessageID, "duration_ms", a.DurationMS)
	if h.cfg.Audit != nil {
		h.cfg.Audit.Record(ctx, auditEntry(info, actor, a))
	}
}

// auditEntry describes a moderation action for the audit trail.
func auditEntry(info Room, actor User, a actionDoc) audit.Entry {
	e := audit.Entry{
		At: a.At, Action: "chat." + a.Action,
		Actor: audit.Actor{ID: actor.ID, Handle: actor.Handle, Admin: actor.Admin},
		Room:  &audit.Room{ID: info.ID, Slug: info.Slug, Title: info.Title},
	}
	details := map[string]any{}
	switch {
	case a.MessageID != "":
		e.Target = &audit.Target{Kind: audit.KindMessage, ID: a.MessageID}
		if a.TargetID != "" {
			details["author_id"], details["author_handle"] = a.TargetID, a.TargetHandle
		}
	case a.TargetID != "":
		e.Target = &audit.Target{Kind: audit.KindUser, ID: a.TargetID, Name: a.TargetHandle}
	}
	switch a.Action {
	case "timeout":
		details["duration_ms"] = a.DurationMS
	case "slow_mode":
		details["interval_ms"] = a.DurationMS
	}
	if a.Reason != "" {
		details["reason"] = a.Reason
	}
	if len(details) > 0 {
		e.Details = details
	}
	return e
}

// DeleteMessage deletes a message of the room for everyone: it leaves the history and a
// "deleted" frame removes it from every client. Deleting a deleted message does nothing.
func (h *Hub) DeleteMessage(ctx context.Context, info Room, actor User, messageID string) error {
	if err := authorize(info, actor, nil); err != nil {
		return err
	}
	oid, err := bson.ObjectIDFromHex(messageID)
	if err != nil {
		return fmt.Errorf("%w: message %q", ErrNotFound, messageID)
	}
	r := h.acquire(info)
	defer h.release(r)
	opCtx, cancel := h.opContext(ctx)
	defer cancel()
	now := nowMS()
	var before messageDoc
	err = h.messages.FindOneAndUpdate(opCtx,
		bson.D{{Key: "_id", Value: oid}, {Key: "room", Value: info.ID}, {Key: "deleted", Value: false}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "deleted", Value: true}, {Key: "deleted_by", Value: actor.ID}, {Key: "deleted_at", Value: now},
		}}}).Decode(&before)
	if errors.Is(err, mongo.ErrNoDocuments) {
		n, cerr := h.messages.CountDocuments(opCtx, bson.D{{Key: "_id", Value: oid}, {Key: "room", Value: info.ID}})
		switch {
		case cerr != nil:
			return unavailable("delete message", cerr)
		case n == 0:
			return fmt.Errorf("%w: message %s", ErrNotFound, messageID)
		}
		return nil // deleted already
	}
	if err != nil {
		return unavailable("delete message", err)
	}
	h.publishEvent(r, typeDeleted, deletedFrame{Type: typeDeleted, ID: messageID}, func() { r.deleteMessage(messageID) })
	h.recordAction(ctx, info, actor, actionDoc{
		Action: "delete", ActorID: actor.ID, ActorHandle: actor.Handle,
		TargetID: before.UserID, TargetHandle: before.Handle, MessageID: messageID, At: now,
	})
	return nil
}

// Timeout keeps target from posting in the room for d (at most MaxTimeout).
func (h *Hub) Timeout(ctx context.Context, info Room, actor, target User, d time.Duration, reason string) error {
	if err := authorize(info, actor, &target); err != nil {
		return err
	}
	if d <= 0 || d > MaxTimeout {
		return fmt.Errorf("%w: timeout of %s (allowed: up to %s)", ErrInvalid, d, MaxTimeout)
	}
	reason, err := cleanReason(reason)
	if err != nil {
		return err
	}
	now := nowMS()
	until := now.Add(d)
	if err := h.setBanDoc(ctx, info, actor, target, bson.D{{Key: "until", Value: until}}, reason, now); err != nil {
		return err
	}
	r := h.acquire(info)
	defer h.release(r)
	h.publishEvent(r, typeUserTimeout,
		userFrame{Type: typeUserTimeout, UserID: target.ID, Handle: target.Handle, Until: &until, DurationMS: d.Milliseconds(), Reason: reason},
		func() { r.setBan(target.ID, false, until, false) })
	h.recordAction(ctx, info, actor, actionDoc{
		Action: "timeout", ActorID: actor.ID, ActorHandle: actor.Handle, TargetID: target.ID,
		TargetHandle: target.Handle, DurationMS: d.Milliseconds(), Reason: reason, At: now,
	})
	return nil
}

// Ban keeps target from posting in the room until Unban.
func (h *Hub) Ban(ctx context.Context, info Room, actor, target User, reason string) error {
	if err := authorize(info, actor, &target); err != nil {
		return err
	}
	reason, err := cleanReason(reason)
	if err != nil {
		return err
	}
	now := nowMS()
	if err := h.setBanDoc(ctx, info, actor, target, bson.D{{Key: "banned", Value: true}}, reason, now); err != nil {
		return err
	}
	r := h.acquire(info)
	defer h.release(r)
	h.publishEvent(r, typeUserBanned,
		userFrame{Type: typeUserBanned, UserID: target.ID, Handle: target.Handle, Reason: reason},
		func() { r.setBan(target.ID, true, time.Time{}, false) })
	h.recordAction(ctx, info, actor, actionDoc{
		Action: "ban", ActorID: actor.ID, ActorHandle: actor.Handle, TargetID: target.ID,
		TargetHandle: target.Handle, Reason: reason, At: now,
	})
	return nil
}

// setBanDoc upserts target's chat_bans document with set.
func (h *Hub) setBanDoc(ctx context.Context, info Room, actor, target User, set bson.D, reason string, now time.Time) error {
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	set = append(set,
		bson.E{Key: "room", Value: info.ID}, bson.E{Key: "user_id", Value: target.ID},
		bson.E{Key: "handle", Value: target.Handle}, bson.E{Key: "reason", Value: reason},
		bson.E{Key: "by", Value: actor.ID}, bson.E{Key: "at", Value: now})
	update := bson.D{{Key: "$set", Value: set}}
	_, err := h.bans.UpdateOne(ctx, bson.D{{Key: "_id", Value: banID(info.ID, target.ID)}}, update,
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return unavailable("store ban", err)
	}
	return nil
}

// Unban lifts target's ban and timeout in the room.
func (h *Hub) Unban(ctx context.Context, info Room, actor, target User) error {
	if err := authorize(info, actor, nil); err != nil {
		return err
	}
	if target.ID == "" {
		return fmt.Errorf("%w: no target user", ErrInvalid)
	}
	opCtx, cancel := h.opContext(ctx)
	_, err := h.bans.DeleteOne(opCtx, bson.D{{Key: "_id", Value: banID(info.ID, target.ID)}})
	cancel()
	if err != nil {
		return unavailable("lift ban", err)
	}
	r := h.acquire(info)
	defer h.release(r)
	h.publishEvent(r, typeUserUnbanned,
		userFrame{Type: typeUserUnbanned, UserID: target.ID, Handle: target.Handle},
		func() { r.setBan(target.ID, false, time.Time{}, true) })
	h.recordAction(ctx, info, actor, actionDoc{
		Action: "unban", ActorID: actor.ID, ActorHandle: actor.Handle, TargetID: target.ID,
		TargetHandle: target.Handle, At: nowMS(),
	})
	return nil
}

// SetSlowMode lets each user post once per interval in the room (0 turns it off; at most
// MaxSlowMode; millisecond resolution). The owner, moderators and admins are exempt.
func (h *Hub) SetSlowMode(ctx context.Context, info Room, actor User, interval time.Duration) error {
	if err := authorize(info, actor, nil); err != nil {
		return err
	}
	interval = interval.Truncate(time.Millisecond)
	if interval < 0 || interval > MaxSlowMode {
		return fmt.Errorf("%w: slow mode of %s (allowed: 0 to %s)", ErrInvalid, interval, MaxSlowMode)
	}
	now := nowMS()
	opCtx, cancel := h.opContext(ctx)
	_, err := h.settings.UpdateOne(opCtx, bson.D{{Key: "_id", Value: info.ID}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "slow_mode_ms", Value: interval.Milliseconds()}, {Key: "by", Value: actor.ID}, {Key: "at", Value: now},
		}}}, options.UpdateOne().SetUpsert(true))
	cancel()
	if err != nil {
		return unavailable("store slow mode", err)
	}
	r := h.acquire(info)
	defer h.release(r)
	h.publishEvent(r, typeSlowMode, slowModeFrame{Type: typeSlowMode, IntervalMS: interval.Milliseconds()},
		func() { r.setSlowMode(interval) })
	h.recordAction(ctx, info, actor, actionDoc{
		Action: "slow_mode", ActorID: actor.ID, ActorHandle: actor.Handle, DurationMS: interval.Milliseconds(), At: now,
	})
	return nil
}

// System posts a notice from the server ("went live", "stream ended") to the room. It is
// stored with the messages and part of the history.
func (h *Hub) System(ctx context.Context, info Room, text string) error {
	text, code, msg := checkText(text, h.cfg.MaxLength)
	if code != "" {
		return fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	r := h.acquire(info)
	defer h.release(r)
	e, oid, at := r.seqReserve()
	doc := messageDoc{ID: oid, Room: info.ID, Kind: typeSystem, Text: text, At: at, Node: h.cfg.NodeID}
	opCtx, cancel := h.opContext(ctx)
	err := h.w.store(opCtx, doc)
	cancel()
	if err != nil {
		r.seqComplete(e, nil)
		return err
	}
	m := doc.message()
	data := marshal(m)
	r.seqComplete(e, func() { h.publishMessage(r, m, data) })
	return nil
}

// applyRemote delivers an event of another node to this node's sockets of its room and
// applies it to the room's cached state.
func (h *Hub) applyRemote(ev *event, node string) {
	r := h.lookup(ev.Room)
	if r == nil {
		return
	}
	var f remoteFrame
	if err := json.Unmarshal(ev.Frame, &f); err != nil {
		h.log.Warn("chat: undecodable event", "node", node, "type", ev.Type, "err", err)
		return
	}
	h.stats.remote.Add(1)
	var change func() bool
	switch ev.Type {
	case typeMessage, typeSystem:
		m := Message{Type: f.Type, ID: f.ID, UserID: f.UserID, Handle: f.Handle, Text: f.Text, At: f.At}
		if ev.Type == typeMessage && f.UserID != "" {
			// A user's posts on every node count against their rate limit and slow mode.
			r.notePost(f.UserID, f.At, time.Now())
		}
		change = func() bool { return r.addMessage(m) }
	case typeDeleted:
		change = func() bool { r.deleteMessage(f.ID); return true }
	case typeUserTimeout:
		change = func() bool { r.setBan(f.UserID, false, f.Until, false); return true }
	case typeUserBanned:
		change = func() bool { r.setBan(f.UserID, true, time.Time{}, false); return true }
	case typeUserUnbanned:
		change = func() bool { r.setBan(f.UserID, false, time.Time{}, true); return true }
	case typeSlowMode:
		change = func() bool { r.setSlowMode(time.Duration(f.IntervalMS) * time.Millisecond); return true }
	default:
		return // a type of a newer version: ignore
	}
	r.publish(textFrame(ev.Frame), change)
}
