package rooms

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/internal/cursor"
)

// RoomQuery selects rooms for ListRooms.
type RoomQuery struct {
	// OwnerID lists one user's rooms. Unlisted ones are included only when the viewer
	// passed to ListRooms is that user or an admin.
	OwnerID string
	// LiveOnly lists only live rooms.
	LiveOnly bool
	// Search keeps rooms whose title contains it, case-insensitively (with All, or the
	// slug).
	Search string
	// All lists every room, whatever its visibility, to an admin (ErrForbidden for others).
	All bool
	// Limit is the page size: default 20, at most 100.
	Limit int
	// Cursor is RoomPage.Next of the previous page ("" for the first).
	Cursor string
}

// RoomPage is one page of ListRooms.
type RoomPage struct {
	Rooms []Room `json:"rooms"`
	// Next is the cursor of the next page, "" on the last.
	Next string `json:"next,omitempty"`
}

type roomCursor struct {
	Live     bool          `json:"l"`
	Activity time.Time     `json:"a"`
	ID       bson.ObjectID `json:"i"`
}

// ListRooms lists rooms, live ones first, then by most recent activity. Only public
// rooms are listed unless q.OwnerID is the viewer (or the viewer is an admin); pass the
// zero User for an anonymous viewer.
func (s *Service) ListRooms(ctx context.Context, viewer User, q RoomQuery) (RoomPage, error) {
	filter := bson.D{}
	if q.All && !viewer.Admin {
		return RoomPage{}, fmt.Errorf("list every room: admins only: %w", ErrForbidden)
	}
	switch {
	case q.All && q.OwnerID == "":
	case q.OwnerID != "":
		oid, err := bson.ObjectIDFromHex(q.OwnerID)
		if err != nil {
			return RoomPage{}, invalid("owner", "is not a user id")
		}
		filter = append(filter, bson.E{Key: "owner_id", Value: oid})
		if viewer.ID != q.OwnerID && !viewer.Admin {
			filter = append(filter, bson.E{Key: "visibility", Value: Public})
		}
	default:
		filter = append(filter, bson.E{Key: "visibility", Value: Public})
	}
	if q.LiveOnly {
		filter = append(filter, bson.E{Key: "live", Value: true})
	}
	if search := strings.TrimSpace(q.Search); search != "" {
		if utf8.RuneCountInString(search) > maxTitle {
			return RoomPage{}, invalid("q", "must be at most %d characters", maxTitle)
		}
		// No text index (doc.go): an escaped, case-insensitive regular expression.
		re := bson.D{{Key: "$regex", Value: regexp.QuoteMeta(search)}, {Key: "$options", Value: "i"}}
		if q.All {
			// In an $and: the cursor below adds an $or of its own.
			filter = append(filter, bson.E{Key: "$and", Value: bson.A{bson.D{{Key: "$or", Value: bson.A{
				bson.D{{Key: "title", Value: re}}, bson.D{{Key: "slug", Value: re}}}}}}})
		} else {
			filter = append(filter, bson.E{Key: "title", Value: re})
		}
	}
	limit := cursor.Limit(q.Limit, 20, 100)
	if q.Cursor != "" {
		c, err := decodeCursor[roomCursor](q.Cursor)
		if err != nil {
			return RoomPage{}, err
		}
		// Keyset pagination over (live desc, activity desc, _id desc).
		after := bson.A{
			bson.D{{Key: "live", Value: c.Live}, {Key: "activity", Value: bson.D{{Key: "$lt", Value: c.Activity}}}},
			bson.D{{Key: "live", Value: c.Live}, {Key: "activity", Value: c.Activity}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: c.ID}}}},
		}
		if c.Live {
			after = append(after, bson.D{{Key: "live", Value: false}})
		}
		filter = append(filter, bson.E{Key: "$or", Value: after})
	}
	opts := options.Find().
		SetSort(bson.D{{Key: "live", Value: -1}, {Key: "activity", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(limit + 1))
	octx, cancel := s.op(ctx)
	defer cancel()
	cur, err := s.rooms.Find(octx, filter, opts)
	if err != nil {
		return RoomPage{}, dbError("list rooms", err)
	}
	var docs []roomDoc
	if err := cur.All(octx, &docs); err != nil {
		return RoomPage{}, dbError("list rooms", err)
	}
	var page RoomPage
	page.Rooms, page.Next = cursor.Page(docs, limit, s.room,
		func(d *roomDoc) any { return roomCursor{Live: d.Live, Activity: d.Activity, ID: d.ID} })
	return page, nil
}

func decodeCursor[T any](s string) (T, error) {
	v, ok := cursor.Decode[T](s)
	if !ok {
		return v, invalid("cursor", "is not a cursor this server gave out")
	}
	return v, nil
}
