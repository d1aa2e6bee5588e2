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
