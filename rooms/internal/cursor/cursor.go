// Package cursor makes the opaque page cursors of rooms' list APIs (keyset pagination):
// a JSON position in URL-safe base64, refused when it is not one this server gave out.
package cursor

import (
	"encoding/base64"
	"encoding/json"
	"strings"
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
