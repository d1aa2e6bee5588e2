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

	"onair/rooms/audit"
)

// Limits of moderation arguments.
const (
	MaxTimeout  = 14 * 24 * time.Hour
	MaxSlowMode = time.Hour
	maxReason   = 200 // runes
)

// Who may moderate what is the package documentation's "Limits and moderation". Each
// rule keeps a moderator's power from reaching above their rank, including through the
// back door: lifting, shortening or taking over what a higher rank set. Ranks come from
// the room as it is now; chat does not look users up, so whether an author or a setter was
// an admin is recorded with the message, ban or setting.

// rankName names a rank in refusals.
func rankName(r int) string {
	switch r {
	case 3:
		return "an admin"
	case 2:
		return "the room's owner"
	case 1:
		return "a moderator"
	}
	return "a user"
}

// targetName names a target's rank in refusals, seen from an actor of rank ar.
func targetName(tr, ar int) string {
	switch {
	case tr == ar && tr == 3:
		return "another admin"
	case tr == ar && tr == 1:
		return "another moderator"
	}
	return rankName(tr)
}

// authorize checks, without MongoDB, that actor moderates the room and, for a target, may
// act on it; it returns actor's rank.
func authorize(info Room, actor User, target *User) (int, error) {
	ar := rank(info, actor)
	if ar == 0 {
		return 0, fmt.Errorf("%w: only the room's owner, its moderators and admins moderate its chat", ErrForbidden)
	}
	if target == nil {
		return ar, nil
	}
	if target.ID == "" {
		return 0, fmt.Errorf("%w: no target user", ErrInvalid)
	}
	if target.ID == actor.ID {
		return 0, fmt.Errorf("%w: you cannot moderate yourself", ErrForbidden)
	}
	if tr := rank(info, *target); tr >= ar {
		return 0, fmt.Errorf("%w: %s cannot moderate %s", ErrForbidden, rankName(ar), targetName(tr, ar))
	}
	return ar, nil
}

// checkNotRestricted refuses an actor who is banned or timed out in the room: while that
// holds they have no say in it, whatever their rank.
func (h *Hub) checkNotRestricted(ctx context.Context, info Room, actor User) error {
	b, err := h.banOf(ctx, info.ID, actor.ID)
	if err != nil {
		return err
	}
	if b.inForce(time.Now()) {
		what := "timed out"
		if b.Banned {
			what = "banned"
		}
		return fmt.Errorf("%w: you are %s in this room and cannot moderate it meanwhile", ErrForbidden, what)
	}
	return nil
}

// banOf reads user's ban document in the room; nil if there is none.
func (h *Hub) banOf(ctx context.Context, roomID, user string) (*banDoc, error) {
	return findByID[banDoc](ctx, h, h.bans, banID(roomID, user))
}

// findByID reads document id of coll; nil if there is none.
func findByID[T any](ctx context.Context, h *Hub, coll *mongo.Collection, id string) (*T, error) {
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	var d T
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, nil
	case err != nil:
		return nil, unavailable("read "+coll.Name(), err)
	}
	return &d, nil
}

// inForce reports whether the ban or timeout of b holds at now.
func (b *banDoc) inForce(now time.Time) bool {
	return b != nil && (b.Banned || b.Until.After(now))
}

// describe is b's restriction in refusals: "ban" or "timeout".
func (b *banDoc) describe() string {
	if b.Banned {
		return "ban"
	}
	return "timeout"
}

// casAttempts bounds the retries of a conditional write that lost a race with another
// moderator's: each retry decides again on what the other one stored.
const casAttempts = 3

// errRace is the outcome of casAttempts lost races.
var errRace = errors.New("the user's ban or the room's settings kept changing meanwhile")

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
	case "purge":
		details["window_ms"], details["count"] = a.DurationMS, a.Count
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
// Its author, and whoever outranks its author, may delete it.
func (h *Hub) DeleteMessage(ctx context.Context, info Room, actor User, messageID string) error {
	ar, err := authorize(info, actor, nil)
	if err != nil {
		return err
	}
	oid, err := bson.ObjectIDFromHex(messageID)
	if err != nil {
		return fmt.Errorf("%w: message %q", ErrNotFound, messageID)
	}
	if err := h.checkNotRestricted(ctx, info, actor); err != nil {
		return err
	}
	opCtx, cancel := h.opContext(ctx)
	defer cancel()
	var doc messageDoc
	err = h.messages.FindOne(opCtx, bson.D{{Key: "_id", Value: oid}, {Key: "room", Value: info.ID}}).Decode(&doc)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("%w: message %s", ErrNotFound, messageID)
	case err != nil:
		return unavailable("read message", err)
	}
	if doc.UserID != actor.ID {
		if tr := rank(info, User{ID: doc.UserID, Admin: doc.Admin}); tr >= ar {
			return fmt.Errorf("%w: %s cannot delete a message of %s", ErrForbidden, rankName(ar), targetName(tr, ar))
		}
	}
	if doc.Deleted {
		return nil
	}
	now := nowMS()
	res, err := h.messages.UpdateOne(opCtx,
		bson.D{{Key: "_id", Value: oid}, {Key: "room", Value: info.ID}, {Key: "deleted", Value: false}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "deleted", Value: true}, {Key: "deleted_by", Value: actor.ID}, {Key: "deleted_at", Value: now},
		}}})
	if err != nil {
		return unavailable("delete message", err)
	}
	if res.MatchedCount == 0 {
		return nil // deleted meanwhile
	}
	r := h.acquire(info)
	defer h.release(r)
	h.publishEvent(r, typeDeleted, deletedFrame{Type: typeDeleted, ID: messageID}, func() { r.deleteMessage(messageID) })
	h.recordAction(ctx, info, actor, actionDoc{
		Action: "delete", ActorID: actor.ID, ActorHandle: actor.Handle,
		TargetID: doc.UserID, TargetHandle: doc.Handle, MessageID: messageID, At: now,
	})
	return nil
}

// Timeout keeps target from posting in the room for d (at most MaxTimeout).
func (h *Hub) Timeout(ctx context.Context, info Room, actor, target User, d time.Duration, reason string) error {
	ar, err := authorize(info, actor, &target)
	if err != nil {
		return err
	}
	if d <= 0 || d > MaxTimeout {
		return fmt.Errorf("%w: timeout of %s (allowed: up to %s)", ErrInvalid, d, MaxTimeout)
	}
	reason, err = cleanReason(reason)
	if err != nil {
		return err
	}
	if err := h.checkNotRestricted(ctx, info, actor); err != nil {
		return err
	}
	now := nowMS()
	until := now.Add(d)
	if err := h.restrict(ctx, info, actor, ar, target, bson.E{Key: "until", Value: until}, reason, now); err != nil {
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
	ar, err := authorize(info, actor, &target)
	if err != nil {
		return err
	}
	reason, err = cleanReason(reason)
	if err != nil {
		return err
	}
	if err := h.checkNotRestricted(ctx, info, actor); err != nil {
		return err
	}
	now := nowMS()
	if err := h.restrict(ctx, info, actor, ar, target, bson.E{Key: "banned", Value: true}, reason, now); err != nil {
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

// restrict stores a ban or timeout (field) of target set by actor, of rank ar, unless one
// in force was set by someone who outranks actor: a moderator could otherwise shorten the
// owner's timeout, or take the owner's ban over and then lift it.
func (h *Hub) restrict(ctx context.Context, info Room, actor User, ar int, target User, field bson.E, reason string, now time.Time) error {
	set := bson.D{
		{Key: "room", Value: info.ID}, {Key: "user_id", Value: target.ID}, {Key: "handle", Value: target.Handle},
		{Key: "reason", Value: reason}, {Key: "by", Value: actor.ID}, {Key: "by_admin", Value: actor.Admin},
		{Key: "at", Value: now}, field,
	}
	for range casAttempts {
		old, err := h.banOf(ctx, info.ID, target.ID)
		if err != nil {
			return err
		}
		if old.inForce(now) {
			if sr := rank(info, User{ID: old.By, Admin: old.ByAdmin}); sr > ar {
				return fmt.Errorf("%w: this user's %s was set by %s, which %s cannot change", ErrForbidden, old.describe(), rankName(sr), rankName(ar))
			}
		}
		done, err := h.casWrite(ctx, h.bans, banID(info.ID, target.ID), old.version(), set)
		if err != nil || done {
			return err
		}
	}
	return unavailable("store ban", errRace)
}

// Unban lifts target's ban and timeout in the room.
func (h *Hub) Unban(ctx context.Context, info Room, actor, target User) error {
	ar, err := authorize(info, actor, nil)
	if err != nil {
		return err
	}
	switch tr := rank(info, target); {
	case target.ID == "":
		return fmt.Errorf("%w: no target user", ErrInvalid)
	case target.ID == actor.ID:
		return fmt.Errorf("%w: you cannot lift your own ban or timeout", ErrForbidden)
	case tr >= ar && !actor.Admin:
		return fmt.Errorf("%w: %s cannot moderate %s", ErrForbidden, rankName(ar), targetName(tr, ar))
	}
	if err := h.checkNotRestricted(ctx, info, actor); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if attempt == casAttempts {
			return unavailable("lift ban", errRace)
		}
		old, err := h.banOf(ctx, info.ID, target.ID)
		if err != nil {
			return err
		}
		if old == nil {
			break // nothing to lift; the frame still clears stale caches
		}
		if old.inForce(time.Now()) {
			if sr := rank(info, User{ID: old.By, Admin: old.ByAdmin}); sr > ar {
				return fmt.Errorf("%w: this user's %s was set by %s, which %s cannot lift", ErrForbidden, old.describe(), rankName(sr), rankName(ar))
			}
		}
		opCtx, cancel := h.opContext(ctx)
		res, err := h.bans.DeleteOne(opCtx, old.version())
		cancel()
		if err != nil {
			return unavailable("lift ban", err)
		}
		if res.DeletedCount == 1 {
			break
		}
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
	ar, err := authorize(info, actor, nil)
	if err != nil {
		return err
	}
	interval = interval.Truncate(time.Millisecond)
	if interval < 0 || interval > MaxSlowMode {
		return fmt.Errorf("%w: slow mode of %s (allowed: 0 to %s)", ErrInvalid, interval, MaxSlowMode)
	}
	if err := h.checkNotRestricted(ctx, info, actor); err != nil {
		return err
	}
	now := nowMS()
	set := bson.D{
		{Key: "slow_mode_ms", Value: interval.Milliseconds()}, {Key: "by", Value: actor.ID},
		{Key: "by_admin", Value: actor.Admin}, {Key: "at", Value: now},
	}
	for attempt := 0; ; attempt++ {
		if attempt == casAttempts {
			return unavailable("store slow mode", errRace)
		}
		old, err := h.settingsOf(ctx, info.ID)
		if err != nil {
			return err
		}
		if old != nil && old.SlowModeMS > 0 {
			if sr := rank(info, User{ID: old.By, Admin: old.ByAdmin}); sr > ar {
				return fmt.Errorf("%w: slow mode was set by %s, which %s cannot change", ErrForbidden, rankName(sr), rankName(ar))
			}
		}
		var version bson.D
		if old != nil {
			version = bson.D{{Key: "_id", Value: old.ID}, {Key: "by", Value: old.By}, {Key: "at", Value: old.At}}
		}
		done, err := h.casWrite(ctx, h.settings, info.ID, version, set)
		if err != nil {
			return err
		}
		if done {
			break
		}
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

// settingsOf reads the room's chat settings; nil if there are none.
func (h *Hub) settingsOf(ctx context.Context, roomID string) (*settingsDoc, error) {
	return findByID[settingsDoc](ctx, h, h.settings, roomID)
}

// version is the filter that matches b only as it was read: nil for no document.
func (b *banDoc) version() bson.D {
	if b == nil {
		return nil
	}
	return bson.D{{Key: "_id", Value: b.ID}, {Key: "by", Value: b.By}, {Key: "at", Value: b.At}}
}

// casWrite sets the fields of document id of coll, provided it is still as it was read:
// matching version, or absent when version is nil. It reports false when it was not (the
// caller reads again and decides again).
func (h *Hub) casWrite(ctx context.Context, coll *mongo.Collection, id string, version, set bson.D) (bool, error) {
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	if version == nil {
		_, err := coll.InsertOne(ctx, append(bson.D{{Key: "_id", Value: id}}, set...))
		switch {
		case mongo.IsDuplicateKeyError(err):
			return false, nil
		case err != nil:
			return false, unavailable("store "+coll.Name(), err)
		}
		return true, nil
	}
	res, err := coll.UpdateOne(ctx, version, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return false, unavailable("store "+coll.Name(), err)
	}
	return res.MatchedCount == 1, nil
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
