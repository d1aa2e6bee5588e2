// Package cursor makes the opaque page cursors of rooms' list APIs (keyset pagination):
// a JSON position in URL-safe base64, refused when it is not one this server gave out.
package cursor

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Encode turns a page position into an opaque string for APIs.
func Encode(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode reads a cursor made by Encode into a T; false if it is not one.
func Decode[T any](s string) (T, bool) {
	var v T
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return v, false
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		return v, false
	}
	return v, true
}

// Page cuts the documents of a query that asked for limit+1 of them to at most limit
// items, and when there were more it returns the next page's cursor: pos of the last
// item's document, encoded.
func Page[D, T any](docs []D, limit int, item func(*D) T, pos func(*D) any) (items []T, next string) {
	items = make([]T, 0, min(len(docs), limit))
	for i := range docs {
		if i == limit {
			return items, Encode(pos(&docs[limit-1]))
		}
		items = append(items, item(&docs[i]))
	}
	return items, ""
}

// Older is the condition that keeps, in a list sorted newest first by (field, _id), the
// documents after the one at (at, id): a cursor's position.
func Older[ID bson.ObjectID | string](field string, at time.Time, id ID) bson.D {
	return bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: field, Value: bson.D{{Key: "$lt", Value: at}}}},
		bson.D{{Key: field, Value: at}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: id}}}},
	}}}
}

// Limit is a page size asked for: def when not set, at most max.
func Limit(asked, def, max int) int {
	if asked <= 0 {
		asked = def
	}
	return min(asked, max)
}
