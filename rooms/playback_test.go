package rooms

import (
	"bytes"
	"errors"
	"math/bits"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func testKeys(t *testing.T, fill byte) *PlaybackKeys {
	t.Helper()
	k, err := NewPlaybackKeys(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Playback ids are 26 base32 characters carrying 128 bits: ids of consecutive ObjectIDs
// (what an attacker enumerates) share nothing visible, and only the canonical spelling of
// an id made with the right secret and kind turns back into its ObjectID.
func TestPlaybackIDs(t *testing.T) {
	k, other := testKeys(t, 1), testKeys(t, 2)
	if _, err := NewPlaybackKeys(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte secret was accepted")
	}
	first := bson.NewObjectID()
	seen := map[string]bool{}
	var prev []byte
	minDiff := 128
	for i := range 200 {
		oid := first
		oid[11] += byte(i) // consecutive ids, as ObjectIDs made in a row are
		oid[10] += byte(i >> 8)
		id := k.PlaybackID(oid.Hex())
		if len(id) != PlaybackIDLen || !IsPlaybackID(id) {
			t.Fatalf("playback id %q: want %d characters of a-z2-7", id, PlaybackIDLen)
		}
		if seen[id] {
			t.Fatalf("playback id %s made twice", id)
		}
		seen[id] = true
		if got, ok := k.roomOID(id); !ok || got != oid {
			t.Fatalf("room of %s = %s %v, want %s", id, got.Hex(), ok, oid.Hex())
		}
		raw, _ := idEncoding.DecodeString(id)
		if prev != nil {
			diff := 0
			for j := range raw {
				diff += bits.OnesCount8(raw[j] ^ prev[j])
			}
			minDiff = min(minDiff, diff)
		}
		prev = raw
	}
	// Neighbours differ in about half their 128 bits; 30 is far out in the tail.
	if minDiff < 30 {
		t.Errorf("ids of consecutive ObjectIDs differ in as few as %d bits", minDiff)
	}

	id := k.PlaybackID(first.Hex())
	bid := k.BroadcastID(first)
	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] = map[bool]byte{true: 'b', false: 'a'}[b[i] == 'a']
		return string(b)
	}
	tests := []struct {
		name string
		id   string
		keys *PlaybackKeys
		want bool
	}{
		{"the id", id, k, true},
		{"another secret", id, other, false},
		{"first character changed", flip(id, 0), k, false},
		{"middle character changed", flip(id, 13), k, false},
		{"uppercase", strings.ToUpper(id), k, false},
		{"too short", id[:25], k, false},
		{"too long", id + "a", k, false},
		{"a broadcast's id", bid, k, false},
		{"the ObjectID", first.Hex(), k, false},
		{"empty", "", k, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := tt.keys.roomOID(tt.id); ok != tt.want || (ok && got != first) {
				t.Fatalf("roomOID(%q) = %s, %v; want %v", tt.id, got.Hex(), ok, tt.want)
			}
		})
	}
	// The last character carries two unused bits: other spellings of the same bytes are
	// not the id.
	raw, _ := idEncoding.DecodeString(id)
	last := strings.IndexByte("abcdefghijklmnopqrstuvwxyz234567", id[25])
	for pad := 1; pad < 4; pad++ {
		alias := id[:25] + string("abcdefghijklmnopqrstuvwxyz234567"[last|pad])
		if alias == id {
			continue
		}
		if b, err := idEncoding.DecodeString(alias); err == nil && bytes.Equal(b, raw) {
			if _, ok := k.roomOID(alias); ok {
				t.Fatalf("non-canonical spelling %s of %s accepted", alias, id)
			}
		}
	}
}

// Broadcast ids are made like playback ids, in a namespace of their own.
func TestBroadcastPublicIDs(t *testing.T) {
	k := testKeys(t, 1)
	oid := bson.NewObjectID()
	id := k.BroadcastID(oid)
	if !IsPlaybackID(id) || strings.Contains(id, oid.Hex()) {
		t.Fatalf("broadcast id %q", id)
	}
	if got, ok := k.broadcastOID(id); !ok || got != oid {
		t.Fatalf("broadcast of %s = %s %v", id, got.Hex(), ok)
	}
	for _, bad := range []string{oid.Hex(), k.PlaybackID(oid.Hex()), testKeys(t, 3).BroadcastID(oid), "zzzzzzzzzzzzzzzzzzzzzzzzzz"} {
		if _, ok := k.broadcastOID(bad); ok {
			t.Errorf("broadcastOID(%q) accepted", bad)
		}
	}
}

func TestPlaybackTokens(t *testing.T) {
	k, other := testKeys(t, 1), testKeys(t, 2)
	now := time.Unix(1_800_000_000, 0)
	room := k.PlaybackID(bson.NewObjectID().Hex())
	otherRoom := k.PlaybackID(bson.NewObjectID().Hex())
	viewer := bson.NewObjectID().Hex()
	sign := func(k *PlaybackKeys, room string, exp time.Time) string {
		t.Helper()
		tok, err := k.Sign(Grant{Room: room, Viewer: viewer, Expires: exp})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := sign(k, room, now.Add(5*time.Minute))
	parts := strings.Split(good, ".")
	swap := func(i int, v string) string {
		p := append([]string{}, parts...)
		p[i] = v
		return strings.Join(p, ".")
	}
	macChanged := []byte(parts[3])
	macChanged[0] ^= 1
	if macChanged[0] == '.' {
		macChanged[0] = 'A'
	}
	tests := []struct {
		name  string
		token string
		room  string
		want  error
	}{
		{"valid", good, room, nil},
		{"valid for a week", sign(k, room, now.Add(MaxURLTokenTTL)), room, nil},
		{"expired", sign(k, room, now.Add(-time.Second)), room, ErrTokenExpired},
		{"expiring now", sign(k, room, now), room, ErrTokenExpired},
		{"wrong room", good, otherRoom, ErrBadToken},
		{"wrong secret", sign(other, room, now.Add(time.Minute)), room, ErrBadToken},
		{"expiry moved", swap(2, "1900000000"), room, ErrBadToken},
		{"viewer changed", swap(1, "node"), room, ErrBadToken},
		{"mac changed", swap(3, string(macChanged)), room, ErrBadToken},
		{"version changed", swap(0, "v2"), room, ErrBadToken},
		{"expiry with a leading zero", swap(2, "0"+parts[2]), room, ErrBadToken},
		{"too far ahead to be ours", sign(k, room, now.Add(MaxURLTokenTTL+time.Hour)), room, ErrBadToken},
		{"missing part", strings.Join(parts[:3], "."), room, ErrBadToken},
		{"empty", "", room, ErrBadToken},
		{"oversized", good + strings.Repeat("A", MaxTokenLen), room, ErrBadToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := k.Verify(tt.token, tt.room, now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %+v, %v; want %v", g, err, tt.want)
			}
			if err == nil && (g.Room != room || g.Viewer != viewer) {
				t.Fatalf("grant %+v", g)
			}
			if err != nil && !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("%v does not wrap ErrUnauthorized", err)
			}
		})
	}
	if len(good) > 80 {
		t.Errorf("token of %d bytes", len(good))
	}
	for _, g := range []Grant{{Room: "slug", Viewer: viewer, Expires: now}, {Room: room, Viewer: "Bad.Viewer", Expires: now}, {Room: room, Viewer: viewer}} {
		if _, err := k.Sign(g); !errors.Is(err, ErrInvalid) {
			t.Errorf("Sign(%+v) = %v, want ErrInvalid", g, err)
		}
	}
	if fp := TokenFingerprint(good); strings.Contains(good, strings.TrimPrefix(fp, "tok-")) || len(fp) != 12 {
		t.Errorf("fingerprint %q", fp)
	}
}

// TestTokenFieldShapes: the hand-written checks accept exactly what the documented
// patterns do: playback ids ^[a-z2-7]{26}$, viewers ^[a-z0-9]{1,32}$.
func TestTokenFieldShapes(t *testing.T) {
	id, viewer := regexp.MustCompile(`^[a-z2-7]{26}$`), regexp.MustCompile(`^[a-z0-9]{1,32}$`)
	for _, s := range []string{"", "a", "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxy2", "abcdefghijklmnopqrstuvwxy8",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz2", "abcdefghijklmnopqrstuvwxy\n", "node", "u1", "user_1", "é",
		strings.Repeat("a", 32), strings.Repeat("a", 33), "a.b", "0"} {
		if got, want := IsPlaybackID(s), id.MatchString(s); got != want {
			t.Errorf("IsPlaybackID(%q) = %v, want %v", s, got, want)
		}
		if got, want := validViewer(s), viewer.MatchString(s); got != want {
			t.Errorf("validViewer(%q) = %v, want %v", s, got, want)
		}
	}
}
