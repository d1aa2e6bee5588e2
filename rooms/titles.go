package rooms

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"onair/rooms/audit"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A room has a title, and a stream title for its coming or current broadcast (Twitch's
// "stream title"). A broadcast takes the room's broadcast title when it starts, follows it
// while live and keeps the one it had when it ended. Its goroutine is the only writer of
// a live broadcast's document (doc.go, The embedded database): a request that changes the
// title writes the room only, and the broadcast's goroutine copies it over, at once on
// this node (liveSet.retitle), at its next heartbeat from any other.

// BroadcastTitle is the title the room's coming or current broadcast has: its stream
// title, or the room's title without one.
func (r Room) BroadcastTitle() string {
	if r.StreamTitle != "" {
		return r.StreamTitle
	}
	return r.Title
}

func (d *roomDoc) broadcastTitle() string {
	return Room{Title: d.Title, StreamTitle: d.StreamTitle}.BroadcastTitle()
}

// RetitleBroadcast changes the title of a past broadcast, for its room's owner or an
// admin. A live one follows its room's stream title instead, which keeps its goroutine
// the only writer of its document.
func (s *Service) RetitleBroadcast(ctx context.Context, actor User, id, title string) (Broadcast, error) {
	t, err := cleanTitle(title)
	if err != nil {
		return Broadcast{}, err
	}
	d, b, room, err := s.editableBroadcast(ctx, actor, "retitle", id)
	if err != nil {
		return Broadcast{}, err
	}
	if b.Ended == nil {
		return Broadcast{}, &ConflictError{Field: "title", Message: "the broadcast is live: its title follows the room's stream title"}
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.broadcasts.UpdateOne(octx, bson.D{{Key: "_id", Value: d.ID}, {Key: "ended", Value: bson.D{{Key: "$ne", Value: nil}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "title", Value: t}}}})
	if err != nil {
		return Broadcast{}, dbError("retitle broadcast "+id, err)
	}
	if res.MatchedCount == 0 {
		return Broadcast{}, fmt.Errorf("broadcast %s: %w", id, ErrNotFound)
	}
	s.record(ctx, actor, audit.BroadcastRetitle, &room, &audit.Target{Kind: audit.KindBroadcast, ID: id}, map[string]any{"title": t})
	b.Title = t
	return b, nil
}

func cleanTitle(t string) (string, error) { return cleanTitleField("title", t, 1) }

// cleanStreamTitle allows "", which clears the stream title.
func cleanStreamTitle(t string) (string, error) { return cleanTitleField("stream_title", t, 0) }

func cleanTitleField(field, t string, minLen int) (string, error) {
	t = strings.TrimSpace(t)
	if !utf8.ValidString(t) {
		return "", invalid(field, "must be valid UTF-8 text")
	}
	if n := utf8.RuneCountInString(t); n < minLen || n > maxTitle {
		if minLen == 0 {
			return "", invalid(field, "must be at most %d characters", maxTitle)
		}
		return "", invalid(field, "must be %d to %d characters", minLen, maxTitle)
	}
	if strings.ContainsFunc(t, isControl) {
		return "", invalid(field, "must not contain control or bidirectional override characters")
	}
	return t, nil
}

func cleanDescription(d string) (string, error) {
	d = strings.TrimSpace(d)
	if !utf8.ValidString(d) {
		return "", invalid("description", "must be valid UTF-8 text")
	}
	if utf8.RuneCountInString(d) > maxDescription {
		return "", invalid("description", "must be at most %d characters", maxDescription)
	}
	if strings.ContainsFunc(d, func(r rune) bool { return r != '\n' && r != '\t' && isControl(r) }) {
		return "", invalid("description", "must not contain control or bidirectional override characters")
	}
	return strings.ReplaceAll(d, "\r\n", "\n"), nil
}

// isControl reports the characters titles and descriptions refuse: C0 and C1 controls,
// and the bidirectional embeddings, overrides and isolates (U+202A–U+202E,
// U+2066–U+2069) that make text display in another order than it reads (the same set
// chat removes from messages).
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// retitle tells the room's broadcasts running here that its broadcast title changed.
// Their goroutines write it, rather than the request that changed it, so that a
// broadcast document keeps one writer while live (doc.go); elsewhere in the cluster the
// live node's next heartbeat does.
func (l *liveSet) retitle(roomID bson.ObjectID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.byStream {
		if b.doc.RoomID == roomID {
			select {
			case b.retitle <- struct{}{}:
			default: // one is pending already
			}
		}
	}
}

// followRoom reads what a live broadcast follows of its room: its title, and what
// checkRoom looks at.
func (s *Service) followRoom(ctx context.Context, id bson.ObjectID) (roomDoc, error) {
	var d roomDoc
	err := s.rooms.FindOne(ctx, bson.D{{Key: "_id", Value: id}},
		options.FindOne().SetProjection(bson.D{{Key: "slug", Value: 1}, {Key: "visibility", Value: 1}, {Key: "key_hash", Value: 1},
			{Key: "owner_id", Value: 1}, {Key: "title", Value: 1}, {Key: "stream_title", Value: 1}})).Decode(&d)
	return d, err
}
