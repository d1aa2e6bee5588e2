package rooms

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/rooms/audit"
)

// Stream keys are 128 random bits written as 32 hex digits: safe in RTMP URLs, easy to
// copy into OBS. Only their SHA-256 is stored; a key is unguessable, so an unsalted
// hash is enough (and lets the unique index find it).
func newStreamKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// ResolveKey gives the route of the stream that this stream key publishes: its room's
// (cmd/onair asks it for the media hub). An unknown key gives ErrUnknownKey. While
// MongoDB is unreachable a key resolved within KeyCacheTTL is answered from memory, so that OBS can reconnect; otherwise the
// error wraps ErrUnavailable.
func (s *Service) ResolveKey(ctx context.Context, key string) (StreamRoute, error) {
	if len(key) == 0 || len(key) > 256 {
		return StreamRoute{}, ErrUnknownKey
	}
	h := keyHash(key)
	epoch := s.keys.currentEpoch()
	d, err := s.roomDoc(ctx, bson.D{{Key: "key_hash", Value: h}}, "stream key")
	switch {
	case err == nil && s.reserved(d.Slug):
		// A room made before its slug was configured as a stream: the configured stream
		// keeps its URLs.
		s.log.Warn("publish refused: the room's slug is the name of a stream of the config file (streams, or -demo)",
			"room_id", d.ID.Hex(), "slug", d.Slug, "key_id", KeyID(key))
		return StreamRoute{}, ErrUnknownKey
	case err == nil && s.refusedOwner(ctx, d):
		s.keys.evict(h)
		return StreamRoute{}, ErrUnknownKey
	case err == nil:
		route := StreamRoute{Name: s.room(&d).StreamName(), RoomID: d.ID.Hex(), Record: d.Recording, MaxLadderKbps: d.MaxLadder}
		s.keys.put(h, route, s.now(), epoch)
		return route, nil
	case errors.Is(err, ErrNotFound):
		s.keys.evict(h)
		return StreamRoute{}, ErrUnknownKey
	case errors.Is(err, ErrUnavailable):
		if route, ok := s.keys.get(h, s.now()); ok {
			s.log.Warn("stream key resolved from cache: database unavailable", "key_id", KeyID(key), "stream", route.Name)
			return route, nil
		}
		return StreamRoute{}, fmt.Errorf("resolve %s: %w", KeyID(key), err)
	default:
		return StreamRoute{}, fmt.Errorf("resolve %s: %w", KeyID(key), err)
	}
}

// MaxLadderKbps bounds a room's max_ladder_kbps: 100 Mbit/s, more than OBS sends.
const MaxLadderKbps = 100000

// ResolveKeyFrom is ResolveKey for a key that a client at ip presents over HTTP (OBS asking
// for its multitrack video configuration). Unknown keys count as failures of ip, within
// the same limit as failed logins (Config.IPLimit, its own count): past it every key from
// ip, right or wrong, gets a *RateLimitError until the window has passed, so that the
// endpoint is no faster an oracle for keys than RTMP and costs MongoDB little.
func (s *Service) ResolveKeyFrom(ctx context.Context, key, ip string) (StreamRoute, error) {
	now := s.now()
	ip = ipKey(ip)
	if wait := s.keyFails.blocked(ip, now); wait > 0 {
		s.log.Warn("stream key check refused: IP rate limited", "ip", ip)
		return StreamRoute{}, &RateLimitError{Scope: "stream key", RetryAfter: wait}
	}
	route, err := s.ResolveKey(ctx, key)
	if errors.Is(err, ErrUnknownKey) {
		s.keyFails.fail(ip, now)
	}
	return route, err
}

// refusedOwner reports whether the room's owner may not publish: a disabled account. While
// the account cannot be read the key resolves as before (a publisher's reconnect is not
// refused for an outage); the live stream's heartbeat checks again (checkRoom).
func (s *Service) refusedOwner(ctx context.Context, d roomDoc) bool {
	disabled, err := s.ownerDisabled(ctx, d.OwnerID)
	if err != nil {
		s.log.Warn("stream key resolved without checking its owner's account", "room_id", d.ID.Hex(), "err", err)
		return false
	}
	if disabled {
		s.log.Warn("publish refused: the room's owner is disabled", "room_id", d.ID.Hex(), "owner_id", d.OwnerID.Hex())
	}
	return disabled
}

// RotateKey gives the room a new stream key and returns it (shown once). The old key
// stops resolving at once and a live publish in the room is stopped (the streamer
// reconnects with the new key). Only the owner or an admin may (ErrForbidden).
func (s *Service) RotateKey(ctx context.Context, actor User, slug string) (string, error) {
	d, err := s.editableRoom(ctx, actor, slug, "rotate the key of")
	if err != nil {
		return "", err
	}
	key := newStreamKey()
	_, err = s.updateRoom(ctx, d.ID, bson.D{{Key: "$set", Value: bson.D{
		{Key: "key_hash", Value: keyHash(key)}, {Key: "updated", Value: s.now()},
	}}}, "rotate key of "+slug)
	// Evicted whatever happened: the write may have landed. A resolve that read the old
	// key before the write cannot cache it afterwards (see keyCache.epoch).
	s.keys.evictRoom(d.ID.Hex())
	if err != nil {
		return "", err
	}
	s.log.Info("stream key rotated", "room_id", d.ID.Hex(), "slug", d.Slug, "key_id", KeyID(key), "by", actor.ID)
	stopped := s.cfg.Stopper != nil && s.cfg.Stopper.Stop(s.room(&d).StreamName(), errKeyRotated)
	if stopped {
		s.log.Info("live stream stopped: key rotated", "slug", d.Slug)
	}
	room := s.room(&d)
	s.record(ctx, actor, audit.KeyRotate, &room, nil, map[string]any{"live_stopped": stopped})
	return key, nil
}

// keyCache remembers recently resolved keys (by hash, never the key itself), least
// recently used first out.
type keyCache struct {
	size int
	ttl  time.Duration

	mu sync.Mutex
	// epoch counts evictions; a resolve caches its result only if no eviction happened
	// since it started reading, so a rotation racing with it cannot leave the old key in.
	epoch  uint64
	lru    *list.List // of *keyEntry, most recent at the front
	byHash map[string]*list.Element
	byRoom map[string]map[string]struct{} // room id -> hashes
}

type keyEntry struct {
	hash  string
	route StreamRoute
	at    time.Time
}

func newKeyCache(size int, ttl time.Duration) *keyCache {
	return &keyCache{size: size, ttl: ttl, lru: list.New(), byHash: map[string]*list.Element{}, byRoom: map[string]map[string]struct{}{}}
}

func (c *keyCache) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

func (c *keyCache) put(hash string, route StreamRoute, now time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	if el, ok := c.byHash[hash]; ok {
		c.removeLocked(el)
	}
	c.byHash[hash] = c.lru.PushFront(&keyEntry{hash: hash, route: route, at: now})
	if c.byRoom[route.RoomID] == nil {
		c.byRoom[route.RoomID] = map[string]struct{}{}
	}
	c.byRoom[route.RoomID][hash] = struct{}{}
	for c.lru.Len() > c.size {
		c.removeLocked(c.lru.Back())
	}
}

func (c *keyCache) get(hash string, now time.Time) (StreamRoute, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byHash[hash]
	if !ok {
		return StreamRoute{}, false
	}
	e := el.Value.(*keyEntry)
	if now.Sub(e.at) >= c.ttl {
		c.removeLocked(el)
		return StreamRoute{}, false
	}
	return e.route, true
}

func (c *keyCache) evict(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byHash[hash]; ok {
		c.epoch++
		c.removeLocked(el)
	}
}

func (c *keyCache) evictRoom(roomID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for h := range c.byRoom[roomID] {
		if el, ok := c.byHash[h]; ok {
			c.removeLocked(el)
		}
	}
	delete(c.byRoom, roomID)
}

func (c *keyCache) prune(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Back(); el != nil; {
		prev := el.Prev()
		if now.Sub(el.Value.(*keyEntry).at) >= c.ttl {
			c.removeLocked(el)
		}
		el = prev
	}
}

func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *keyCache) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*keyEntry)
	delete(c.byHash, e.hash)
	if hs := c.byRoom[e.route.RoomID]; hs != nil {
		delete(hs, e.hash)
		if len(hs) == 0 {
			delete(c.byRoom, e.route.RoomID)
		}
	}
}
