package rooms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/singleflight"

	"onair/rooms/audit"
	"onair/rooms/cluster"
	"onair/rooms/mongodb"
)

// Config configures a Service. Only DB is required; zero values take the defaults given.
type Config struct {
	// DB is the database holding the collections users, sessions, rooms, broadcasts,
	// rooms_meta, identities, login_failures, devices and api_tokens. The client's own timeouts may be generous: every operation here is bounded
	// by OpTimeout, which also bounds server selection.
	DB *mongo.Database
	// Logger receives structured logs (nil discards them); never passwords, session
	// tokens or stream keys.
	Logger *slog.Logger
	// Stopper ends live publishes when a key is rotated or a room deleted (optional).
	Stopper StreamStopper
	// Now is the clock (default time.Now); tests inject one to check expiry.
	Now func() time.Time
	// Cluster is this node's place among the nodes sharing the database: its id (in
	// broadcast documents), the other nodes (where a room's HLS is served), and the leases
	// that give each live stream one owner. Required.
	Cluster *cluster.Registry

	// OpTimeout bounds each MongoDB operation (default 3 s), whatever the caller's context
	// allows. Callers should pass a request's context; a shorter deadline wins, and a
	// deadline reached while talking to MongoDB is reported as ErrUnavailable.
	OpTimeout time.Duration

	// SessionTTL is how long a session lasts after login (default 30 days; not sliding).
	SessionTTL time.Duration
	// Password sets argon2id's cost (default t=2, m=19 MiB, p=1: about 25-30 ms of one
	// core per hash on a 2-core AMD EPYC server; BenchmarkHashPassword measures it).
	Password PasswordParams
	// MaxConcurrentHashes bounds argon2 hashes running at once, and with them memory
	// (each takes Password.MemoryKiB). Default 2. Waiting callers honour their context.
	MaxConcurrentHashes int
	// AccountLimit bounds failed logins per account from one client address (default 5
	// per 15 min). Past it that address may not try the account while its owner, from
	// elsewhere, still can: a limit on the account alone would let anyone lock anyone out.
	AccountLimit RateLimit
	// AccountTotalLimit bounds failed logins per account from all addresses together
	// (default 50 per 15 min), against guessing spread over many addresses. A browser that
	// signed in to the account before (LogIn.Device) is exempt, so that such an attack
	// cannot lock the owner out either.
	AccountTotalLimit RateLimit
	// IPLimit bounds failed logins per client IP (default 20 per 15 min).
	IPLimit RateLimit
	// SignUpLimit bounds the accounts made from one client IP (default 5 per hour).
	// Sign-ups also get at most half of MaxConcurrentHashes, so that a flood of them
	// never slows logins.
	SignUpLimit RateLimit

	// KeyCacheSize and KeyCacheTTL bound the cache of resolved stream keys that lets
	// publishers reconnect while MongoDB is briefly unreachable (defaults 10 000 and 1 h).
	KeyCacheSize int
	KeyCacheTTL  time.Duration

	// JanitorInterval is how often Run deletes expired sessions, prunes in-memory state
	// and ends broadcasts whose node stopped reporting (default 1 min).
	JanitorInterval time.Duration
	// ViewersInterval is how often a live room's viewer count is summed over the nodes'
	// reports (Cluster) and, when it changed, written (default 5 s).
	ViewersInterval time.Duration
	// HeartbeatInterval is how often a live broadcast's document is refreshed with its
	// figures, and how often broadcasts left open by dead nodes are looked for (at twice
	// that pace; default 4 s).
	HeartbeatInterval time.Duration
	// RetryMin and RetryMax bound the backoff of broadcast writes that MongoDB refused
	// (defaults 100 ms and 3 s).
	RetryMin, RetryMax time.Duration
	// DrainTimeout is how long Run, once its context ends, waits for broadcasts to be
	// written as ended before it gives up on them (default 10 s).
	DrainTimeout time.Duration

	// Objects deletes recordings from object storage (deleted broadcasts and rooms,
	// retention). Without it recordings are never deleted.
	Objects ObjectStore
	// RecordingsPrefix is where recordings live in Objects, one folder per room
	// ("recordings/" by default: <prefix><room id>/<run id>/...).
	RecordingsPrefix string
	// RetentionDays deletes recordings this many days after their broadcast ended, unless
	// a room sets its own (0: keep forever).
	RetentionDays int

	// OnLive is called once a room shows live, OnEnded once it shows offline again (both
	// after the documents are written), from the broadcast's own goroutine: return quickly.
	// room is the room as written; b is the broadcast (Ended set for OnEnded).
	OnLive  func(room Room, b Broadcast)
	OnEnded func(room Room, b Broadcast)
	// OnRecording is called once a broadcast's recording is attached and ready
	// (AttachRecording; not again when the same recording is attached twice), from the
	// caller's goroutine: return quickly. b carries the Recording (without its index).
	OnRecording func(room Room, b Broadcast)
	// OnRoomCreated and OnRoomDeleted are called once a room was created or deleted (after
	// Audit is told), from the caller's goroutine: return quickly.
	OnRoomCreated, OnRoomDeleted func(RoomChange)
	// OnClip is called once a clip is stored (CreateClip), from the caller's goroutine:
	// return quickly.
	OnClip func(room Room, c Clip)

	// ReservedSlugs are stream names taken outside rooms (the config file's streams, the
	// demo stream): no room may have one, since a room's slug is its stream's name and the
	// room would take over the configured stream's URLs.
	ReservedSlugs []string

	// Audit, when set, is told of every owner and admin action once it took effect (room
	// create, update and delete, key rotation, moderators added and removed, broadcast
	// deletes: the room.* and broadcast.* actions of rooms/audit), with the caller's
	// context. It must return quickly (audit.Log queues).
	Audit audit.Recorder
}

// Service is the rooms library: accounts, sessions, rooms, stream keys and broadcasts.
// It is safe for concurrent use. cmd/onair wires it to the media hub (streams.go).
type Service struct {
	cfg Config
	log *slog.Logger

	users, sessions, rooms, broadcasts, meta *mongo.Collection
	identities                               *mongo.Collection // external sign-ins (external.go)
	loginFails                               *mongo.Collection // failed logins of every node (loginfails.go)
	devices                                  *mongo.Collection // browsers that signed in to an account (devices.go)
	tokens                                   *mongo.Collection // API tokens (tokens.go)
	clips                                    *mongo.Collection // clips (clips.go)

	lookups singleflight.Group // room lookups by reference running now (findRoomDoc)

	dummyHash string        // verified against for unknown accounts, to take the same time
	hashSem   chan struct{} // bounds concurrent argon2 hashes
	signUpSem chan struct{} // bounds the share of hashSem that sign-ups may hold

	// ipFails counts this node's failed logins per address, a first line before the
	// failures stored for every node (loginfails.go).
	ipFails *failureWindow
	// keyFails counts this node's unknown stream keys presented over HTTP per address
	// (ResolveKeyFrom).
	keyFails *failureWindow
	keys     *keyCache
	locks    keyedMutex // serialises this process's writes to one room document

	live         liveSet      // broadcasts running on this node
	viewerCounts viewerCounts // the cluster's, shared by the live broadcasts (viewers.go)

	playback   atomic.Pointer[PlaybackKeys] // nil until the secret is read (playback.go)
	playbackMu sync.Mutex                   // one reader of the secret at a time

	streamLocks keyedMutex // serialises claiming a stream and ending its lost broadcasts
	claimsMu    sync.Mutex
	claims      map[string]*StreamClaim // this node's claims on streams, by name

	bg       context.Context // broadcast writers; cancelled when Run gives up draining
	bgCancel context.CancelFunc
	writers  sync.WaitGroup
}

// New checks cfg and returns a Service. It does not talk to MongoDB: call EnsureIndexes
// at start (it is idempotent) and Run for the janitors.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Cluster == nil {
		return nil, errors.New("rooms: Config.DB and Config.Cluster are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RecordingsPrefix == "" {
		cfg.RecordingsPrefix = "recordings/"
	}
	if cfg.RetentionDays < 0 || cfg.RetentionDays > maxRetentionDays {
		return nil, fmt.Errorf("rooms: RetentionDays must be between 0 and %d, got %d", maxRetentionDays, cfg.RetentionDays)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.OpTimeout, 3*time.Second)
	def(&cfg.SessionTTL, 30*24*time.Hour)
	def(&cfg.KeyCacheTTL, time.Hour)
	def(&cfg.JanitorInterval, time.Minute)
	def(&cfg.ViewersInterval, 5*time.Second)
	def(&cfg.HeartbeatInterval, 4*time.Second)
	def(&cfg.RetryMin, 100*time.Millisecond)
	def(&cfg.RetryMax, 3*time.Second)
	def(&cfg.DrainTimeout, 10*time.Second)
	if cfg.Password == (PasswordParams{}) {
		cfg.Password = defaultPasswordParams
	}
	if cfg.Password.Time < 1 || cfg.Password.MemoryKiB < 8 || cfg.Password.Threads < 1 ||
		cfg.Password.Time > maxTime || cfg.Password.MemoryKiB > maxMemoryKiB {
		return nil, fmt.Errorf("rooms: Config.Password out of range: %+v", cfg.Password)
	}
	if cfg.MaxConcurrentHashes <= 0 {
		cfg.MaxConcurrentHashes = 2
	}
	limit := func(l *RateLimit, n int, window time.Duration) {
		if l.Failures == 0 {
			l.Failures = n
		}
		if l.Window <= 0 {
			l.Window = window
		}
	}
	limit(&cfg.AccountLimit, 5, 15*time.Minute)
	limit(&cfg.AccountTotalLimit, 50, 15*time.Minute)
	limit(&cfg.IPLimit, 20, 15*time.Minute)
	limit(&cfg.SignUpLimit, 5, time.Hour)
	if cfg.KeyCacheSize <= 0 {
		cfg.KeyCacheSize = 10000
	}

	dummy, err := hashPassword(randomToken(16), cfg.Password)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	s := &Service{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "rooms"),
		users:      cfg.DB.Collection("users"),
		sessions:   cfg.DB.Collection("sessions"),
		rooms:      cfg.DB.Collection("rooms"),
		broadcasts: cfg.DB.Collection("broadcasts"),
		meta:       cfg.DB.Collection("rooms_meta"),
		identities: cfg.DB.Collection("identities"),
		loginFails: cfg.DB.Collection("login_failures"),
		devices:    cfg.DB.Collection("devices"),
		tokens:     cfg.DB.Collection("api_tokens"),
		clips:      cfg.DB.Collection("clips"),
		dummyHash:  dummy,
		hashSem:    make(chan struct{}, cfg.MaxConcurrentHashes),
		signUpSem:  make(chan struct{}, max(1, cfg.MaxConcurrentHashes/2)),
		ipFails:    newFailureWindow(cfg.IPLimit, 100000),
		keyFails:   newFailureWindow(cfg.IPLimit, 100000),
		keys:       newKeyCache(cfg.KeyCacheSize, cfg.KeyCacheTTL),
		live:       liveSet{byStream: map[string]*liveBroadcast{}},
		claims:     map[string]*StreamClaim{},
		bg:         bg,
		bgCancel:   cancel,
	}
	return s, nil
}

// EnsureIndexes creates the collections' indexes if they are missing (idempotent) and
// repairs a first-admin grant interrupted by a crash.
func (s *Service) EnsureIndexes(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 4*s.cfg.OpTimeout)
	defer cancel()
	type ix = mongodb.Index
	k := mongodb.Keys
	sets := []struct {
		c       *mongo.Collection
		indexes []ix
	}{
		{s.users, []ix{
			{Name: "email_unique", Unique: true, Keys: k("email", 1)},
			{Name: "handle_unique", Unique: true, Keys: k("handle", 1)},
		}},
		{s.sessions, []ix{
			{Name: "user", Keys: k("user_id", 1)},
			{Name: "expires", Keys: k("expires", 1)},
		}},
		{s.rooms, []ix{
			{Name: "slug_unique", Unique: true, Keys: k("slug", 1)},
			{Name: "key_hash_unique", Unique: true, Keys: k("key_hash", 1)},
			{Name: "owner", Keys: k("owner_id", 1, "activity", -1)},
			{Name: "listing", Keys: k("visibility", 1, "live", -1, "activity", -1, "_id", -1)},
		}},
		{s.tokens, tokenIndexes()},
		{s.loginFails, []ix{
			{Name: "key_at", Keys: k("key", 1, "at", -1)},
		}},
		{s.clips, []ix{
			{Name: "room_created", Keys: k("room_id", 1, "created", -1)},
			{Name: "maker_created", Keys: k("maker_id", 1, "created", -1)},
			{Name: "created", Keys: k("created", 1)},
		}},
		{s.broadcasts, []ix{
			{Name: "room_started", Keys: k("room_id", 1, "started", -1)},
			{Name: "open", Keys: k("ended", 1, "heartbeat", 1)},
			{Name: "run", Keys: k("run_id", 1)},
			{Name: "recordings", Keys: k("recording.status", 1, "ended", 1)},
		}},
	}
	// Every node derives playback and broadcast ids from the same secret: read it (or
	// create it) before anything else.
	if _, err := s.Playback(ctx); err != nil {
		return err
	}
	for _, set := range sets {
		if err := mongodb.CreateIndexes(ctx, set.c, set.indexes...); err != nil {
			return dbError("rooms indexes", err)
		}
	}
	return s.repairFirstAdmin(ctx)
}

// Run runs the janitors until ctx ends: expired sessions are deleted (no TTL index, see
// doc.go), in-memory limits and caches pruned, and broadcasts left open by dead nodes (or
// by this node before a crash) ended. Once ctx ends it waits up to DrainTimeout for live
// broadcasts to be written as ended (stop the media hub at the same time), then returns nil.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.JanitorInterval)
	defer t.Stop()
	// Lost nodes' broadcasts end at a faster pace than the janitor's: a room live on a node
	// that died must show offline within seconds.
	hb := time.NewTicker(s.cfg.HeartbeatInterval / 2)
	defer hb.Stop()
	if _, err := s.Playback(ctx); err != nil {
		s.log.Warn("playback keys not read yet", "err", err)
	}
	if n, err := s.endOrphans(ctx); err != nil {
		s.log.Warn("end broadcasts left open by this node", "err", err)
	} else if n > 0 {
		s.log.Info("ended broadcasts left open by this node", "count", n, "node", s.node())
	}
	s.janitor(ctx)
	for {
		select {
		case <-ctx.Done():
			s.drain()
			return nil
		case <-t.C:
			s.janitor(ctx)
		case <-hb.C:
			if n, err := s.EndStaleBroadcasts(ctx); err != nil {
				s.log.Warn("end stale broadcasts", "err", err)
			} else if n > 0 {
				s.log.Info("ended broadcasts of lost nodes", "count", n)
			}
		}
	}
}

func (s *Service) janitor(ctx context.Context) {
	now := s.now()
	s.ipFails.prune(now)
	s.keyFails.prune(now)
	if err := s.deleteOldFailures(ctx, now); err != nil {
		s.log.Warn("old failed logins not deleted", "err", err)
	}
	s.keys.prune(now)
	if n, err := s.DeleteExpiredSessions(ctx); err != nil {
		s.log.Warn("expired sessions not deleted", "err", err)
	} else if n > 0 {
		s.log.Info("deleted expired sessions", "count", n)
	}
	if n, err := s.deleteExpiredTokens(ctx); err != nil {
		s.log.Warn("expired api tokens not deleted", "err", err)
	} else if n > 0 {
		s.log.Info("deleted expired api tokens", "count", n)
	}
	if n, err := s.ExpireRecordings(ctx); err != nil {
		s.log.Warn("expired recordings not deleted", "err", err)
	} else if n > 0 {
		s.log.Info("deleted expired recordings", "count", n)
	}
}

func (s *Service) drain() {
	done := make(chan struct{})
	go func() {
		s.writers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.cfg.DrainTimeout):
		s.log.Warn("broadcast writes still pending at shutdown; giving up on them", "live", s.live.count())
	}
	s.bgCancel()
}

// now is the clock at MongoDB's precision (milliseconds), so that what is returned equals
// what is read back.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// op bounds one MongoDB operation.
func (s *Service) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.OpTimeout)
}

// retry runs f until it succeeds, with exponential backoff, for writes that must not be
// lost (broadcast documents). It gives up only when s.bg is cancelled or after a few
// attempts at an error that is not about MongoDB being unreachable.
func (s *Service) retry(what string, attrs []any, f func(ctx context.Context) error) error {
	wait := s.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		ctx, cancel := s.op(s.bg)
		err := f(ctx)
		cancel()
		if err == nil {
			if attempt > 1 {
				s.log.Info(what+": succeeded after retries", append(attrs, "attempts", attempt)...)
			}
			return nil
		}
		if s.bg.Err() != nil {
			s.log.Error(what+": given up at shutdown", append(attrs, "err", err)...)
			return err
		}
		if !errors.Is(err, ErrUnavailable) && attempt >= 8 {
			s.log.Error(what+": given up", append(attrs, "err", err, "attempts", attempt)...)
			return err
		}
		if attempt == 1 || attempt%10 == 0 {
			s.log.Warn(what+": will retry", append(attrs, "err", err, "attempts", attempt)...)
		}
		select {
		case <-s.bg.Done():
		case <-time.After(wait):
		}
		wait = min(wait*2, s.cfg.RetryMax)
	}
}

// keyedMutex hands out one mutex per key, kept only while in use.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*refMutex
}

type refMutex struct {
	sync.Mutex
	refs int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*refMutex{}
	}
	m := k.m[key]
	if m == nil {
		m = &refMutex{}
		k.m[key] = m
	}
	m.refs++
	k.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		k.mu.Lock()
		if m.refs--; m.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
