package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/rooms/audit"
	"onair/rooms/mongodb"
)

// Collections.
const (
	collWebhooks   = "webhooks"
	collDeliveries = "webhook_deliveries"
	collClaims     = "webhook_claims"
)

// Nodes is the cluster's node registry as the dispatcher needs it; *cluster.Registry
// satisfies it.
type Nodes interface {
	ID() string
	IsAlive(ctx context.Context, id string) (bool, error)
}

// Endpoint is where the global webhook posts.
type Endpoint struct {
	URL    string
	Secret string
	Format Format // default FormatJSON
	// Events it receives; default every event type.
	Events []string
}

// Config configures a Dispatcher. Only DB is required; zero values take the defaults.
type Config struct {
	// DB holds webhooks, webhook_deliveries and webhook_claims.
	DB *mongo.Database
	// Logger receives structured logs (nil discards them): never secrets or full URLs
	// (hosts only).
	Logger *slog.Logger
	// Nodes is the cluster's node registry: this node's id (deliveries this node creates
	// are written by it alone; at start it resumes the ones it left pending) and which
	// nodes are alive (a dead node's pending deliveries are adopted). Required.
	Nodes Nodes
	// Global receives every room's events (URL "" for none).
	Global Endpoint
	// AllowPrivate lets webhooks reach loopback, private and link-local addresses
	// (tests, or receivers on the same network). Off, such URLs are refused at creation
	// and connections to such addresses at dial time.
	AllowPrivate bool
	// PublicURL is onair's base URL for links in Slack messages (optional).
	PublicURL string
	// Timeout bounds one delivery attempt (default 10 s).
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the wait between attempts, which doubles from
	// BackoffMin after each failure (defaults 5 s and 10 min; ±20 % jitter). A receiver's
	// Retry-After is honoured up to BackoffMax.
	BackoffMin, BackoffMax time.Duration
	// GiveUpAfter is how long after an event was queued its delivery is retried before it
	// is marked failed (default 1 h); every delivery gets at least one attempt.
	GiveUpAfter time.Duration
	// LogRetention is how long finished deliveries stay in the log (default 7 days).
	LogRetention time.Duration
	// MaxConcurrent bounds the requests in flight (default 16).
	MaxConcurrent int
	// QueueSize bounds the events published but not yet stored (default 10 000).
	QueueSize int
	// OpTimeout bounds each MongoDB operation (default 3 s).
	OpTimeout time.Duration
	// JanitorInterval is how often dead nodes' deliveries are adopted and old log entries
	// deleted (default 30 s).
	JanitorInterval time.Duration
	// PollInterval is how often a delivery waiting behind an earlier one of the same room
	// held by another node checks again (default 2 s).
	PollInterval time.Duration
	// DrainTimeout is how long Run, once its context ends, keeps storing published events
	// (default 5 s). Deliveries themselves stop at once and resume at the next start.
	DrainTimeout time.Duration
	// Audit, when set, is told of webhooks created and deleted.
	Audit audit.Recorder
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Dispatcher publishes room events to webhooks: it stores each event's deliveries in
// MongoDB, delivers them in order per webhook and room with retries, and keeps a
// delivery log. It also manages rooms' webhooks.
type Dispatcher struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client

	hooks, deliveries, claims *mongo.Collection

	// Intake (intake.go): events published and not yet stored.
	intake     chan *event
	lastQueued time.Time // owned by the intake goroutine

	// Queues (queues.go): this node's pending deliveries, one worker per webhook and room.
	mu      sync.Mutex
	started bool
	runCtx  context.Context
	queues  map[string]*queue
	workers sync.WaitGroup

	// Delivery (delivery.go): the requests in flight.
	sem chan struct{}

	dropped, delivered, failed atomic.Uint64
}

// New checks cfg and returns a Dispatcher. It does not talk to MongoDB: call
// EnsureIndexes at start and Run.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.DB == nil || cfg.Nodes == nil {
		return nil, errors.New("webhook: Config.DB and Config.Nodes are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, 10*time.Second)
	def(&cfg.BackoffMin, 5*time.Second)
	def(&cfg.BackoffMax, 10*time.Minute)
	def(&cfg.GiveUpAfter, time.Hour)
	def(&cfg.LogRetention, 7*24*time.Hour)
	def(&cfg.OpTimeout, 3*time.Second)
	def(&cfg.JanitorInterval, 30*time.Second)
	def(&cfg.PollInterval, 2*time.Second)
	def(&cfg.DrainTimeout, 5*time.Second)
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 16
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10000
	}
	if cfg.BackoffMin > cfg.BackoffMax {
		return nil, fmt.Errorf("webhook: BackoffMin %s is longer than BackoffMax %s", cfg.BackoffMin, cfg.BackoffMax)
	}
	if g := &cfg.Global; g.URL != "" {
		u, err := url.Parse(g.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("webhook: the global webhook's URL must be an http:// or https:// URL")
		}
		if g.Format, err = checkFormat(g.Format); err != nil {
			return nil, fmt.Errorf("webhook: global webhook: %w", err)
		}
		if g.Events, err = checkEvents(g.Events, EventTypes); err != nil {
			return nil, fmt.Errorf("webhook: global webhook: %w", err)
		}
		if g.Format == FormatJSON && g.Secret == "" {
			return nil, errors.New("webhook: the global webhook needs a secret to sign its JSON deliveries")
		}
	}
	return &Dispatcher{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "webhooks"),
		client:     newClient(cfg.Timeout, cfg.AllowPrivate),
		hooks:      cfg.DB.Collection(collWebhooks),
		deliveries: cfg.DB.Collection(collDeliveries),
		claims:     cfg.DB.Collection(collClaims),
		intake:     make(chan *event, cfg.QueueSize),
		sem:        make(chan struct{}, cfg.MaxConcurrent),
		queues:     map[string]*queue{},
	}, nil
}

func (d *Dispatcher) now() time.Time { return d.cfg.Now().UTC().Truncate(time.Millisecond) }

func (d *Dispatcher) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.cfg.OpTimeout)
}

// EnsureIndexes creates the collections' indexes if they are missing (idempotent).
func (d *Dispatcher) EnsureIndexes(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 4*d.cfg.OpTimeout)
	defer cancel()
	k := mongodb.Keys
	for _, set := range []struct {
		c       *mongo.Collection
		indexes []mongodb.Index
	}{
		{d.hooks, []mongodb.Index{{Name: "room", Keys: k("room_id", 1, "created", 1)}}},
		{d.deliveries, []mongodb.Index{
			{Name: "node_pending", Keys: k("node", 1, "status", 1, "queued", 1, "_id", 1)},
			{Name: "fifo", Keys: k("webhook_id", 1, "room_id", 1, "status", 1, "queued", 1)},
			{Name: "log", Keys: k("webhook_id", 1, "queued", -1, "_id", -1)},
			{Name: "room_log", Keys: k("room_id", 1, "queued", -1, "_id", -1)},
			{Name: "done", Keys: k("status", 1, "done", 1)},
		}},
		{d.claims, []mongodb.Index{{Name: "at", Keys: k("at", 1)}}},
	} {
		if err := mongodb.CreateIndexes(ctx, set.c, set.indexes...); err != nil {
			return dbError("webhook indexes", err)
		}
	}
	return nil
}

// Stats are counters for metrics.
type Stats struct {
	Delivered uint64 // deliveries answered 2xx
	Failed    uint64 // deliveries given up
	Dropped   uint64 // events lost before they were stored (queue full, shutdown)
	Queued    int    // events published and not yet stored
	Pending   int    // deliveries held in memory by this node
}

// Stats returns the dispatcher's counters.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	pending := 0
	for _, q := range d.queues {
		pending += len(q.items)
	}
	d.mu.Unlock()
	return Stats{Delivered: d.delivered.Load(), Failed: d.failed.Load(), Dropped: d.dropped.Load(),
		Queued: len(d.intake), Pending: pending}
}

// Run delivers until ctx ends: it resumes the deliveries this node left pending (waiting
// for MongoDB if need be), stores and delivers published events, says this node is alive,
// adopts the pending deliveries of dead nodes and prunes the delivery log. Once ctx ends
// it stores what was published for up to DrainTimeout, stops delivering (pending
// deliveries resume at the next start) and returns nil.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return errors.New("webhook: Run called twice")
	}
	d.started, d.runCtx = true, ctx
	d.mu.Unlock()

	wait := d.cfg.BackoffMin / 10
	for {
		n, err := d.resume(ctx)
		if err == nil {
			if n > 0 {
				d.log.Info("resumed pending webhook deliveries", "count", n, "node", d.node())
			}
			break
		}
		d.log.Warn("pending webhook deliveries not resumed yet; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			d.drainIntake()
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
	var wg sync.WaitGroup
	wg.Go(func() { d.runIntake(ctx) })
	wg.Go(func() { d.janitor(ctx) })
	<-ctx.Done()
	wg.Wait()
	d.workers.Wait()
	return nil
}

// janitor adopts dead nodes' pending deliveries and prunes the delivery log until ctx
// ends.
func (d *Dispatcher) janitor(ctx context.Context) {
	sweep := time.NewTicker(d.cfg.JanitorInterval)
	defer sweep.Stop()
	d.sweep(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			d.sweep(ctx)
		}
	}
}

func (d *Dispatcher) sweep(ctx context.Context) {
	if n, err := d.adoptOrphans(ctx); err != nil {
		if ctx.Err() == nil {
			d.log.Warn("dead nodes' deliveries not adopted", "err", err)
		}
	} else if n > 0 {
		d.log.Info("adopted pending webhook deliveries of dead nodes", "count", n)
	}
	if n, err := d.pruneLog(ctx); err != nil {
		if ctx.Err() == nil {
			d.log.Warn("delivery log not pruned", "err", err)
		}
	} else if n > 0 {
		d.log.Info("pruned the delivery log", "deleted", n)
	}
}

// node is this node's id.
func (d *Dispatcher) node() string { return d.cfg.Nodes.ID() }

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return u.Host
}
