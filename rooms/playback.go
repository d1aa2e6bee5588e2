package rooms

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/rooms/mongodb"
)

// Unlisted and private rooms, and every broadcast, are addressed by ids nobody can guess
// or enumerate, and the media of private rooms by signed, expiring playback tokens. All
// of it is keyed by one secret that every node reads from MongoDB (rooms_meta, _id
// "playback_secret"): the first node to start creates it with a unique insert, so a
// cluster needs no extra configuration, and the secret never leaves the servers.
//
// Playback ids and broadcast ids are the ObjectID of the room or broadcast, tagged and
// encrypted with AES under a key derived from the secret (one 16-byte block, written as
// 26 lowercase base32 characters). So every room has its playback id from the moment it
// exists, rooms created before this feature included, without a write: nothing to
// backfill, nothing two nodes could race on, and the id is turned back into the ObjectID
// without an index. Guessing one means guessing a 128-bit block that decrypts to the
// right tag and an existing ObjectID. Deleting the secret document (after a leak) gives
// every room and broadcast new ids and voids every token.

// PlaybackIDLen is the length of playback ids and broadcast ids.
const PlaybackIDLen = 26

// Lifetimes of playback tokens.
const (
	// CookieTokenTTL is the lifetime of the tokens the web pages get in cookies: a viewer
	// whose invitation is revoked, or a room made private, loses playback within it.
	CookieTokenTTL = 5 * time.Minute
	// MinURLTokenTTL and MaxURLTokenTTL bound the tokens owners give external players.
	MinURLTokenTTL = time.Minute
	MaxURLTokenTTL = 7 * 24 * time.Hour
	// MaxTokenLen bounds a token before it is parsed (the ones made here are about 70).
	MaxTokenLen = 128
)

const playbackSecretID = "playback_secret"

// idEncoding is base32 in lowercase: ids fit stream names, slugs' alphabet and URLs.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// IsPlaybackID reports whether s has the shape of a playback or broadcast id, 26 of
// [a-z2-7] (it may still name nothing). Every private media request checks one: a loop,
// not a regular expression.
func IsPlaybackID(s string) bool {
	return len(s) == 26 && onlyOf(s, func(c byte) bool { return 'a' <= c && c <= 'z' || '2' <= c && c <= '7' })
}

// onlyOf reports whether every byte of s is one that ok accepts.
func onlyOf(s string, ok func(byte) bool) bool {
	for i := range len(s) {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// Tags told apart by decryption, so that a room's playback id never works as a
// broadcast id and the other way round.
var (
	roomTag      = [4]byte{'r', 'o', 'o', 'm'}
	broadcastTag = [4]byte{'b', 'c', 's', 't'}
)

// PlaybackKeys makes and reads playback ids, broadcast ids and playback tokens. It is
// derived from the cluster's secret and never changes while onair runs.
type PlaybackKeys struct {
	ids cipher.Block
	mac []byte
	// macs holds HMAC states keyed with mac, reset rather than keyed anew for every token.
	macs sync.Pool
}

// NewPlaybackKeys derives the keys from a secret of at least 32 bytes.
func NewPlaybackKeys(secret []byte) (*PlaybackKeys, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("playback secret of %d bytes: want at least 32", len(secret))
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("onair public ids v1"))
	if err != nil {
		return nil, fmt.Errorf("playback id cipher: %w", err)
	}
	k := &PlaybackKeys{ids: block, mac: derive("onair playback tokens v1")}
	k.macs.New = func() any { return hmac.New(sha256.New, k.mac) }
	return k, nil
}

func (k *PlaybackKeys) encode(oid bson.ObjectID, tag [4]byte) string {
	var b [16]byte
	copy(b[:12], oid[:])
	copy(b[12:], tag[:])
	k.ids.Encrypt(b[:], b[:])
	return idEncoding.EncodeToString(b[:])
}

func (k *PlaybackKeys) decode(id string, tag [4]byte) (bson.ObjectID, bool) {
	var oid bson.ObjectID
	if !IsPlaybackID(id) {
		return oid, false
	}
	raw, err := idEncoding.DecodeString(id)
	// The last character carries two unused bits: only the canonical spelling is an id,
	// so that one room has one playback id.
	if err != nil || len(raw) != 16 || idEncoding.EncodeToString(raw) != id {
		return oid, false
	}
	k.ids.Decrypt(raw, raw)
	if !hmac.Equal(raw[12:], tag[:]) {
		return oid, false
	}
	copy(oid[:], raw[:12])
	return oid, true
}

// PlaybackID is the playback id of the room with this id (24 hex digits); "" for a
// malformed id.
func (k *PlaybackKeys) PlaybackID(roomID string) string {
	oid, err := bson.ObjectIDFromHex(roomID)
	if err != nil {
		return ""
	}
	return k.encode(oid, roomTag)
}

// BroadcastID is the public id of the broadcast with this ObjectID.
func (k *PlaybackKeys) BroadcastID(oid bson.ObjectID) string { return k.encode(oid, broadcastTag) }

// roomOID is the ObjectID of the room with this playback id.
func (k *PlaybackKeys) roomOID(playbackID string) (bson.ObjectID, bool) {
	return k.decode(playbackID, roomTag)
}

// broadcastOID is the ObjectID of the broadcast with this public id.
func (k *PlaybackKeys) broadcastOID(id string) (bson.ObjectID, bool) {
	return k.decode(id, broadcastTag)
}

// Grant is what a playback token says: Viewer may play the media of the room whose
// playback id is Room until Expires.
type Grant struct {
	Room    string
	Viewer  string // a user id, or "node" for a node fetching HLS from another
	Expires time.Time
}

// Token errors; both wrap ErrUnauthorized.
var (
	ErrBadToken     = fmt.Errorf("%w: playback token is malformed, forged or for another room", ErrUnauthorized)
	ErrTokenExpired = fmt.Errorf("%w: playback token expired", ErrUnauthorized)
)

// validViewer reports whether s is a token's viewer: 1 to 32 of [a-z0-9].
func validViewer(s string) bool {
	return len(s) >= 1 && len(s) <= 32 && onlyOf(s, func(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' })
}

// Token format: v1.<viewer>.<expiry, Unix seconds>.<MAC>, where MAC is the first 16
// bytes of HMAC-SHA256 over the version, the room's playback id, the viewer and the
// expiry, in unpadded base64url. The room is not in the token: it is in the URL the
// token is presented with, and a token of another room fails the MAC.

const tokenVersion = "v1"

// Sign makes a token for g.
func (k *PlaybackKeys) Sign(g Grant) (string, error) {
	if !IsPlaybackID(g.Room) || !validViewer(g.Viewer) || g.Expires.Unix() <= 0 {
		return "", fmt.Errorf("sign playback token: %w", ErrInvalid)
	}
	exp := strconv.FormatInt(g.Expires.Unix(), 10)
	return tokenVersion + "." + g.Viewer + "." + exp + "." + k.tokenMAC(g.Room, g.Viewer, exp), nil
}

func (k *PlaybackKeys) tokenMAC(room, viewer, exp string) string {
	m := k.macs.Get().(hash.Hash)
	defer k.macs.Put(m)
	m.Reset()
	// Fields are fixed alphabets without the separator, so joining them is unambiguous.
	for _, f := range [...]string{tokenVersion, "\n", room, "\n", viewer, "\n", exp} {
		_, _ = io.WriteString(m, f)
	}
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0])[:16])
}

// Verify checks token for the room with this playback id at now.
func (k *PlaybackKeys) Verify(token, room string, now time.Time) (Grant, error) {
	if len(token) > MaxTokenLen || !IsPlaybackID(room) {
		return Grant{}, ErrBadToken
	}
	version, rest, _ := strings.Cut(token, ".")
	viewer, rest, _ := strings.Cut(rest, ".")
	expText, mac, ok := strings.Cut(rest, ".")
	if !ok || version != tokenVersion || !validViewer(viewer) || strings.Contains(mac, ".") {
		return Grant{}, ErrBadToken
	}
	exp, err := strconv.ParseInt(expText, 10, 64)
	if err != nil || exp <= 0 || strconv.FormatInt(exp, 10) != expText {
		return Grant{}, ErrBadToken
	}
	if subtle.ConstantTimeCompare([]byte(mac), []byte(k.tokenMAC(room, viewer, expText))) != 1 {
		return Grant{}, ErrBadToken
	}
	g := Grant{Room: room, Viewer: viewer, Expires: time.Unix(exp, 0)}
	if !now.Before(g.Expires) {
		return g, ErrTokenExpired
	}
	// Nothing here signs for longer: a token that says so was not made by these rules.
	if g.Expires.Sub(now) > MaxURLTokenTTL+time.Minute {
		return Grant{}, ErrBadToken
	}
	return g, nil
}

// TokenFingerprint names a token in logs without revealing it.
func TokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "tok-" + hex.EncodeToString(sum[:4])
}

// Playback returns the cluster's playback keys, reading (or, on a new database,
// creating) the secret the first time. Every node derives the same keys.
func (s *Service) Playback(ctx context.Context) (*PlaybackKeys, error) {
	if k := s.playback.Load(); k != nil {
		return k, nil
	}
	s.playbackMu.Lock()
	defer s.playbackMu.Unlock()
	if k := s.playback.Load(); k != nil {
		return k, nil
	}
	secret, err := s.playbackSecret(ctx)
	if err != nil {
		return nil, err
	}
	k, err := NewPlaybackKeys(secret)
	if err != nil {
		return nil, err
	}
	s.playback.Store(k)
	return k, nil
}

// playbackSecret reads the secret, or creates it: a unique insert decides which of
// several starting nodes writes it, and the others read what it wrote.
func (s *Service) playbackSecret(ctx context.Context) ([]byte, error) {
	var m struct {
		Secret []byte `bson:"secret"`
	}
	find := func() error {
		octx, cancel := s.op(ctx)
		defer cancel()
		return s.meta.FindOne(octx, bson.D{{Key: "_id", Value: playbackSecretID}}).Decode(&m)
	}
	err := find()
	if errors.Is(err, mongo.ErrNoDocuments) {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("make playback secret: %w", err)
		}
		octx, cancel := s.op(ctx)
		_, err = s.meta.InsertOne(octx, bson.D{{Key: "_id", Value: playbackSecretID}, {Key: "secret", Value: secret}, {Key: "created", Value: s.now()}})
		cancel()
		switch {
		case err == nil:
			s.log.Info("playback secret created")
			return secret, nil
		case !mongodb.IsDup(err):
			return nil, dbError("store playback secret", err)
		}
		err = find() // another node stored one first
	}
	if err != nil {
		return nil, dbError("read playback secret", err)
	}
	if len(m.Secret) < 32 {
		return nil, fmt.Errorf("playback secret in rooms_meta is %d bytes, want 32", len(m.Secret))
	}
	return m.Secret, nil
}

// pkeys is the playback keys, read now if they were not yet (a room or broadcast is being
// shown, so MongoDB answered a moment ago); nil if they cannot be read.
func (s *Service) pkeys() *PlaybackKeys {
	if k := s.playback.Load(); k != nil {
		return k
	}
	k, err := s.Playback(s.bg)
	if err != nil {
		s.log.Warn("playback keys not read", "err", err)
	}
	return k
}
