package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/audit"
	"onair/rooms/internal/cursor"
	"onair/rooms/mongodb"
)

// Collections.
const (
	collWebhooks   = "webhooks"
	collDeliveries = "webhook_deliveries"
	collClaims     = "webhook_claims"
)

// Delivery states.
const (
	StatusPending   = "pending"   // waiting for its turn or its next attempt
	StatusDelivered = "delivered" // the receiver answered 2xx
	StatusFailed    = "failed"    // given up after GiveUpAfter
	StatusCanceled  = "canceled"  // its webhook was deleted (or the global one removed)
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
	// Logger receives structured logs: never secrets or full URLs (hosts only).
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

	intake chan *event
	sem    chan struct{}

	mu      sync.Mutex
	started bool
	runCtx  context.Context
	queues  map[string]*queue
	workers sync.WaitGroup

	lastQueued time.Time // owned by the intake goroutine

	dropped, delivered, failed atomic.Uint64
}

// queue is the FIFO of one webhook and room.
type queue struct {
	key     string
	items   []*deliveryDoc
	running bool
	busy    bool // items[0] is being delivered
}

type deliveryDoc struct {
	ID        bson.ObjectID `bson:"_id"`
	EventID   string        `bson:"event_id"`
	Type      string        `bson:"type"`
	WebhookID string        `bson:"webhook_id"` // GlobalID or a webhook's hex id
	RoomID    string        `bson:"room_id"`
	RoomSlug  string        `bson:"room_slug"`
	Format    Format        `bson:"format"`
	Body      string        `bson:"body"` // exactly what is posted
	Status    string        `bson:"status"`
	Attempts  int           `bson:"attempts"`
	// LastStatus is the last answer's HTTP status (0: none); LastError why it failed.
	LastStatus  int        `bson:"last_status"`
	LastError   string     `bson:"last_error"`
	Created     time.Time  `bson:"created"` // the event's time
	Queued      time.Time  `bson:"queued"`  // with _id, the order of a webhook and room's deliveries
	NextAttempt time.Time  `bson:"next_attempt"`
	LastAttempt *time.Time `bson:"last_attempt"`
	Done        *time.Time `bson:"done"` // when delivered, failed or canceled
	// Node is the process that writes this document: the one that created it, or the one
	// that adopted it (by a unique insert into webhook_claims) after that one died.
	Node string `bson:"node"`
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
		if g.Events, err = checkEvents(g.Events); err != nil {
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
	k := func(pairs ...any) bson.D {
		out := bson.D{}
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, bson.E{Key: pairs[i].(string), Value: pairs[i+1]})
		}
		return out
	}
	sets := []struct {
		c    *mongo.Collection
		name string
		keys bson.D
	}{
		{d.hooks, "room", k("room_id", 1, "created", 1)},
		{d.deliveries, "node_pending", k("node", 1, "status", 1, "queued", 1, "_id", 1)},
		{d.deliveries, "fifo", k("webhook_id", 1, "room_id", 1, "status", 1, "queued", 1)},
		{d.deliveries, "log", k("webhook_id", 1, "queued", -1, "_id", -1)},
		{d.deliveries, "room_log", k("room_id", 1, "queued", -1, "_id", -1)},
		{d.deliveries, "done", k("status", 1, "done", 1)},
		{d.claims, "at", k("at", 1)},
	}
	// One at a time: FerretDB 1.24 drops the connection on a createIndexes of several
	// indexes that all exist already.
	for _, ix := range sets {
		if _, err := ix.c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: options.Index().SetName(ix.name)}); err != nil {
			return dbError("create index "+ix.c.Name()+"."+ix.name, err)
		}
	}
	return nil
}

// Publish queues an event for every webhook that wants it: the global one and the
// room's. It never blocks: the event is stored by Run (retrying while MongoDB is
// unreachable) and only then delivered. When the queue is full the event is dropped,
// logged and counted, and ErrQueueFull returned.
func (d *Dispatcher) Publish(e Event) error {
	if !knownType(e.Type) {
		return fmt.Errorf("publish: %w: unknown event type %q", ErrInvalid, e.Type)
	}
	if e.Room.ID == "" {
		return fmt.Errorf("publish %s: %w: no room", e.Type, ErrInvalid)
	}
	if e.ID == "" {
		e.ID = "evt_" + bson.NewObjectID().Hex()
	}
	if e.Created.IsZero() {
		e.Created = d.cfg.Now()
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return fmt.Errorf("publish %s: marshal data: %w", e.Type, err)
	}
	ev := &event{id: e.ID, typ: e.Type, created: e.Created.UTC().Truncate(time.Millisecond), room: e.Room, data: data}
	select {
	case d.intake <- ev:
		return nil
	default:
		n := d.dropped.Add(1)
		d.log.Error("webhook event dropped: queue full", "event_id", ev.id, "type", ev.typ, "room_id", ev.room.ID, "dropped_total", n)
		return ErrQueueFull
	}
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

// resume queues this node's pending deliveries.
func (d *Dispatcher) resume(ctx context.Context) (int, error) {
	octx, cancel := context.WithTimeout(ctx, 4*d.cfg.OpTimeout)
	defer cancel()
	cur, err := d.deliveries.Find(octx, bson.D{{Key: "node", Value: d.node()}, {Key: "status", Value: StatusPending}},
		options.Find().SetSort(bson.D{{Key: "queued", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return 0, dbError("find pending deliveries", err)
	}
	var docs []deliveryDoc
	if err := cur.All(octx, &docs); err != nil {
		return 0, dbError("read pending deliveries", err)
	}
	for i := range docs {
		d.enqueue(&docs[i])
	}
	return len(docs), nil
}

// runIntake stores published events, in order, and queues their deliveries.
func (d *Dispatcher) runIntake(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			d.drainIntake()
			return
		case ev := <-d.intake:
			docs, err := d.persist(ctx, ev)
			if err != nil {
				if ctx.Err() != nil {
					d.drainIntake(ev)
					return
				}
				n := d.dropped.Add(1)
				d.log.Error("webhook event dropped: not stored", "event_id", ev.id, "type", ev.typ, "room_id", ev.room.ID, "err", err, "dropped_total", n)
				continue
			}
			for _, doc := range docs {
				d.enqueue(doc)
			}
		}
	}
}

// drainIntake stores the events still queued at shutdown (first), for up to
// DrainTimeout; their deliveries go out at the next start. The rest are dropped.
func (d *Dispatcher) drainIntake(first ...*event) {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.DrainTimeout)
	defer cancel()
	pending := first
	for {
		if len(pending) == 0 {
			select {
			case ev := <-d.intake:
				pending = append(pending, ev)
			default:
				return
			}
		}
		ev := pending[0]
		pending = pending[1:]
		if _, err := d.persist(ctx, ev); err != nil {
			n := d.dropped.Add(1)
			d.log.Error("webhook event dropped: not stored by the shutdown deadline", "event_id", ev.id, "type", ev.typ,
				"room_id", ev.room.ID, "err", err, "dropped_total", n)
		}
	}
}

type target struct {
	id     string
	format Format
}

// targets are the webhooks that want ev: the global one and the room's.
func (d *Dispatcher) targets(ctx context.Context, ev *event) ([]target, error) {
	var out []target
	if g := d.cfg.Global; g.URL != "" && slices.Contains(g.Events, ev.typ) {
		out = append(out, target{id: GlobalID, format: g.Format})
	}
	octx, cancel := d.op(ctx)
	defer cancel()
	cur, err := d.hooks.Find(octx, bson.D{{Key: "room_id", Value: ev.room.ID}},
		options.Find().SetSort(bson.D{{Key: "created", Value: 1}, {Key: "_id", Value: 1}}).
			SetProjection(bson.D{{Key: "format", Value: 1}, {Key: "events", Value: 1}}))
	if err != nil {
		return nil, dbError("find the room's webhooks", err)
	}
	var docs []webhookDoc
	if err := cur.All(octx, &docs); err != nil {
		return nil, dbError("read the room's webhooks", err)
	}
	for _, h := range docs {
		if slices.Contains(h.Events, ev.typ) {
			out = append(out, target{id: h.ID.Hex(), format: h.Format})
		}
	}
	return out, nil
}

// persist stores ev's deliveries, retrying with backoff while MongoDB is unreachable,
// until they are stored or ctx ends. Other errors are retried a few times.
func (d *Dispatcher) persist(ctx context.Context, ev *event) ([]*deliveryDoc, error) {
	var docs []*deliveryDoc
	stored := 0
	wait := min(d.cfg.BackoffMin/10, time.Second)
	refused := 0
	for attempt := 1; ; attempt++ {
		err := func() error {
			if docs == nil {
				ts, err := d.targets(ctx, ev)
				if err != nil {
					return err
				}
				docs = d.build(ev, ts)
			}
			for ; stored < len(docs); stored++ {
				octx, cancel := d.op(ctx)
				_, err := d.deliveries.InsertOne(octx, docs[stored])
				cancel()
				if err != nil && !mongodb.IsDup(err) { // a duplicate: an earlier attempt landed
					return dbError("store delivery", err)
				}
			}
			return nil
		}()
		if err == nil {
			if attempt > 1 {
				d.log.Info("webhook event stored after retries", "event_id", ev.id, "attempts", attempt)
			}
			return docs, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if !errors.Is(err, ErrUnavailable) {
			if refused++; refused >= 5 {
				return nil, err
			}
		}
		if attempt == 1 || attempt%10 == 0 {
			d.log.Warn("webhook event not stored yet; will retry", "event_id", ev.id, "type", ev.typ, "attempts", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// build makes ev's delivery documents, with ids and order fixed once.
func (d *Dispatcher) build(ev *event, ts []target) []*deliveryDoc {
	queued := d.now()
	if queued.Before(d.lastQueued) {
		queued = d.lastQueued
	}
	d.lastQueued = queued
	docs := make([]*deliveryDoc, 0, len(ts))
	for _, t := range ts {
		docs = append(docs, &deliveryDoc{
			ID: bson.NewObjectID(), EventID: ev.id, Type: ev.typ, WebhookID: t.id, RoomID: ev.room.ID, RoomSlug: ev.room.Slug,
			Format: t.format, Body: string(ev.body(t.format, d.cfg.PublicURL)), Status: StatusPending,
			Created: ev.created, Queued: queued, NextAttempt: queued, Node: d.node(),
		})
	}
	return docs
}

// enqueue adds a pending delivery to its webhook and room's queue, in order, and starts
// the queue's worker if it is idle.
func (d *Dispatcher) enqueue(doc *deliveryDoc) {
	key := doc.WebhookID + "/" + doc.RoomID
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.queues[key]
	if q == nil {
		q = &queue{key: key}
		d.queues[key] = q
	}
	for _, it := range q.items {
		if it.ID == doc.ID {
			return
		}
	}
	// In (queued, _id) order, but never before the delivery being worked on.
	i := len(q.items)
	for i > 0 && (i > 1 || !q.busy) && before(doc, q.items[i-1]) {
		i--
	}
	q.items = slices.Insert(q.items, i, doc)
	if !q.running {
		q.running = true
		d.workers.Add(1)
		go d.work(q)
	}
}

func before(a, b *deliveryDoc) bool {
	if !a.Queued.Equal(b.Queued) {
		return a.Queued.Before(b.Queued)
	}
	return bytes.Compare(a.ID[:], b.ID[:]) < 0
}

// work delivers q's deliveries one after the other until it is empty or Run stops.
func (d *Dispatcher) work(q *queue) {
	defer d.workers.Done()
	ctx := d.runCtx
	for {
		d.mu.Lock()
		if len(q.items) == 0 || ctx.Err() != nil {
			q.running = false
			if len(q.items) == 0 {
				delete(d.queues, q.key)
			}
			d.mu.Unlock()
			return
		}
		doc := q.items[0]
		q.busy = true
		d.mu.Unlock()

		d.deliver(ctx, doc)

		d.mu.Lock()
		q.busy = false
		if ctx.Err() == nil && len(q.items) > 0 && q.items[0] == doc {
			q.items = q.items[1:]
		}
		d.mu.Unlock()
	}
}

// errGone: the delivery's webhook no longer exists.
var errGone = errors.New("webhook deleted")

// endpoint is where a delivery goes now.
func (d *Dispatcher) endpoint(ctx context.Context, webhookID string) (Endpoint, error) {
	if webhookID == GlobalID {
		if d.cfg.Global.URL == "" {
			return Endpoint{}, fmt.Errorf("%w: no global webhook is configured any more", errGone)
		}
		return d.cfg.Global, nil
	}
	doc, err := d.webhookDoc(ctx, "", webhookID)
	if errors.Is(err, ErrNotFound) {
		return Endpoint{}, errGone
	}
	if err != nil {
		return Endpoint{}, err
	}
	return Endpoint{URL: doc.URL, Secret: doc.Secret, Format: doc.Format}, nil
}

// sleep waits for d or ctx; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// deliver works on one delivery until it is delivered, failed or canceled, another node
// took it over, or ctx ends (it is then left pending for the next start).
func (d *Dispatcher) deliver(ctx context.Context, doc *deliveryDoc) {
	log := d.log.With("delivery_id", doc.ID.Hex(), "event_id", doc.EventID, "type", doc.Type,
		"webhook_id", doc.WebhookID, "room_id", doc.RoomID)
	gated := false
	dbWait := min(d.cfg.BackoffMin, time.Second)
	for {
		if !sleep(ctx, doc.NextAttempt.Sub(d.cfg.Now())) {
			return
		}
		if !gated {
			// Per-room order across nodes: an earlier pending delivery of this webhook
			// and room held by another node goes first.
			earlier, err := d.earlierElsewhere(ctx, doc)
			if err != nil {
				log.Debug("webhook: order check failed; retrying", "err", err)
				if !sleep(ctx, dbWait) {
					return
				}
				continue
			}
			if earlier {
				if !sleep(ctx, d.cfg.PollInterval) {
					return
				}
				continue
			}
			gated = true
		}
		ep, err := d.endpoint(ctx, doc.WebhookID)
		now := d.now()
		switch {
		case errors.Is(err, errGone):
			doc.Status, doc.LastError, doc.Done = StatusCanceled, err.Error(), &now
			if d.save(ctx, doc, log) {
				log.Info("webhook delivery canceled", "reason", err.Error())
			}
			return
		case err != nil:
			log.Debug("webhook: endpoint lookup failed; retrying", "err", err)
			if !sleep(ctx, dbWait) {
				return
			}
			continue
		}

		res := d.attempt(ctx, ep, doc)
		saveCtx := ctx
		if ctx.Err() != nil {
			if !res.ok {
				return // interrupted: not counted, tried again at the next start
			}
			// Delivered just as Run stopped: record it, so that it is not sent again.
			var cancel context.CancelFunc
			saveCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), d.cfg.DrainTimeout)
			defer cancel()
		}
		now = d.now()
		doc.Attempts++
		doc.LastAttempt, doc.LastStatus, doc.LastError = &now, res.status, res.err
		deadline := doc.Queued.Add(d.cfg.GiveUpAfter)
		switch {
		case res.ok:
			doc.Status, doc.Done = StatusDelivered, &now
		case !now.Before(deadline):
			doc.Status, doc.Done = StatusFailed, &now
		default:
			doc.NextAttempt = now.Add(min(d.backoff(doc.Attempts, res.retryAfter), deadline.Sub(now)))
		}
		if !d.save(saveCtx, doc, log) {
			return
		}
		attrs := []any{"host", hostOf(ep.URL), "attempts", doc.Attempts, "status", res.status}
		switch doc.Status {
		case StatusDelivered:
			d.delivered.Add(1)
			log.Debug("webhook delivered", attrs...)
			return
		case StatusFailed:
			d.failed.Add(1)
			log.Error("webhook delivery given up", append(attrs, "err", res.err, "after", now.Sub(doc.Queued).Round(time.Second))...)
			return
		}
		log.Warn("webhook delivery failed; will retry", append(attrs, "err", res.err, "next_attempt", doc.NextAttempt)...)
	}
}

// backoff is the wait after the n-th failed attempt.
func (d *Dispatcher) backoff(n int, retryAfter time.Duration) time.Duration {
	w := d.cfg.BackoffMin
	for i := 1; i < n && w < d.cfg.BackoffMax; i++ {
		w *= 2
	}
	w = min(w, d.cfg.BackoffMax)
	w = time.Duration(float64(w) * (0.8 + 0.4*rand.Float64()))
	if retryAfter > w {
		w = min(retryAfter, d.cfg.BackoffMax)
	}
	return max(w, time.Millisecond)
}

// attempt posts the delivery once.
func (d *Dispatcher) attempt(ctx context.Context, ep Endpoint, doc *deliveryDoc) attemptResult {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return attemptResult{err: "shutting down"}
	}
	defer func() { <-d.sem }()
	body := []byte(doc.Body)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "onair-webhooks/1")
	h.Set(EventHeader, doc.Type)
	h.Set(EventIDHeader, doc.EventID)
	h.Set(DeliveryHeader, doc.ID.Hex())
	if ep.Secret != "" {
		h.Set(SignatureHeader, Sign(ep.Secret, d.cfg.Now(), body))
	}
	actx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	return post(actx, d.client, ep.URL, h, body)
}

// save writes the delivery's state (this node is its only writer), retrying while
// MongoDB is unreachable. It returns false if ctx ended first or another node adopted
// the delivery (it is then that node's).
func (d *Dispatcher) save(ctx context.Context, doc *deliveryDoc, log *slog.Logger) bool {
	set := bson.D{
		{Key: "status", Value: doc.Status}, {Key: "attempts", Value: doc.Attempts},
		{Key: "last_status", Value: doc.LastStatus}, {Key: "last_error", Value: doc.LastError},
		{Key: "next_attempt", Value: doc.NextAttempt}, {Key: "last_attempt", Value: doc.LastAttempt},
		{Key: "done", Value: doc.Done},
	}
	wait := min(d.cfg.BackoffMin, time.Second)
	for attempt := 1; ; attempt++ {
		octx, cancel := d.op(ctx)
		res, err := d.deliveries.UpdateOne(octx, bson.D{{Key: "_id", Value: doc.ID}, {Key: "node", Value: d.node()}},
			bson.D{{Key: "$set", Value: set}})
		cancel()
		if err == nil {
			if res.MatchedCount == 0 {
				log.Warn("webhook delivery taken over by another node; leaving it")
				return false
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if attempt == 1 || attempt%10 == 0 {
			log.Warn("webhook delivery state not saved yet; retrying", "err", err, "attempts", attempt)
		}
		if !sleep(ctx, wait) {
			return false
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// earlierElsewhere reports whether another node holds an earlier pending delivery of the
// same webhook and room.
func (d *Dispatcher) earlierElsewhere(ctx context.Context, doc *deliveryDoc) (bool, error) {
	octx, cancel := d.op(ctx)
	defer cancel()
	n, err := d.deliveries.CountDocuments(octx, bson.D{
		{Key: "webhook_id", Value: doc.WebhookID}, {Key: "room_id", Value: doc.RoomID},
		{Key: "status", Value: StatusPending}, {Key: "node", Value: bson.D{{Key: "$ne", Value: d.node()}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "queued", Value: bson.D{{Key: "$lt", Value: doc.Queued}}}},
			bson.D{{Key: "queued", Value: doc.Queued}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: doc.ID}}}},
		}},
	}, options.Count().SetLimit(1))
	if err != nil {
		return false, dbError("check delivery order", err)
	}
	return n > 0, nil
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
			d.log.Warn("webhook: adopting dead nodes' deliveries", "err", err)
		}
	} else if n > 0 {
		d.log.Info("adopted pending webhook deliveries of dead nodes", "count", n)
	}
	cutoff := d.now().Add(-d.cfg.LogRetention)
	octx, cancel := d.op(ctx)
	defer cancel()
	res, err := d.deliveries.DeleteMany(octx, bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{StatusDelivered, StatusFailed, StatusCanceled}}}},
		{Key: "done", Value: bson.D{{Key: "$lt", Value: cutoff}}},
	})
	if err == nil {
		_, err = d.claims.DeleteMany(octx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: cutoff}}}})
	}
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("webhook: pruning the delivery log", "err", err)
		}
	} else if res.DeletedCount > 0 {
		d.log.Info("webhook: pruned the delivery log", "deleted", res.DeletedCount)
	}
}

// adoptOrphans takes over the pending deliveries of nodes the registry counts as dead. Each delivery is claimed by a unique insert into
// webhook_claims, so that exactly one node adopts it; only then is its node changed.
func (d *Dispatcher) adoptOrphans(ctx context.Context) (int, error) {
	// Not distinct: FerretDB 1.24 refuses it with a time limit.
	var docs []struct {
		Node string `bson:"node"`
	}
	octx, cancel := d.op(ctx)
	cur, err := d.deliveries.Find(octx, bson.D{{Key: "status", Value: StatusPending}, {Key: "node", Value: bson.D{{Key: "$ne", Value: d.node()}}}},
		options.Find().SetProjection(bson.D{{Key: "node", Value: 1}, {Key: "_id", Value: 0}}).SetLimit(10000))
	if err == nil {
		err = cur.All(octx, &docs)
	}
	cancel()
	if err != nil {
		return 0, dbError("list nodes with pending deliveries", err)
	}
	nodes := map[string]bool{}
	for _, doc := range docs {
		nodes[doc.Node] = true
	}
	adopted := 0
	for node := range nodes {
		alive, err := d.alive(ctx, node)
		if err != nil {
			return adopted, err
		}
		if alive {
			continue
		}
		n, err := d.adopt(ctx, node)
		adopted += n
		if err != nil {
			return adopted, err
		}
	}
	return adopted, nil
}

func (d *Dispatcher) alive(ctx context.Context, node string) (bool, error) {
	octx, cancel := d.op(ctx)
	defer cancel()
	alive, err := d.cfg.Nodes.IsAlive(octx, node)
	if err != nil {
		return false, dbError("read node heartbeat", err)
	}
	return alive, nil
}

// node is this node's id.
func (d *Dispatcher) node() string { return d.cfg.Nodes.ID() }

func (d *Dispatcher) adopt(ctx context.Context, dead string) (int, error) {
	octx, cancel := context.WithTimeout(ctx, 4*d.cfg.OpTimeout)
	cur, err := d.deliveries.Find(octx, bson.D{{Key: "node", Value: dead}, {Key: "status", Value: StatusPending}},
		options.Find().SetSort(bson.D{{Key: "queued", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(1000))
	var docs []deliveryDoc
	if err == nil {
		err = cur.All(octx, &docs)
	}
	cancel()
	if err != nil {
		return 0, dbError("find a dead node's deliveries", err)
	}
	n := 0
	for i := range docs {
		doc := &docs[i]
		octx, cancel := d.op(ctx)
		_, err := d.claims.InsertOne(octx, bson.D{
			{Key: "_id", Value: doc.ID.Hex() + "/" + dead}, {Key: "node", Value: d.node()}, {Key: "at", Value: d.now()},
		})
		if err == nil {
			var res *mongo.UpdateResult
			res, err = d.deliveries.UpdateOne(octx, bson.D{{Key: "_id", Value: doc.ID}, {Key: "node", Value: dead}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "node", Value: d.node()}}}})
			if err == nil && res.MatchedCount == 1 {
				doc.Node = d.node()
				d.enqueue(doc)
				n++
			}
		}
		cancel()
		if mongodb.IsDup(err) {
			continue // another node claimed it
		}
		if err != nil {
			return n, dbError("adopt a delivery", err)
		}
	}
	if n > 0 {
		d.log.Info("adopted a dead node's webhook deliveries", "dead_node", dead, "count", n)
	}
	return n, nil
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return u.Host
}

// Delivery is one event sent to one webhook, as the delivery log shows it.
type Delivery struct {
	ID        string `json:"id"`
	EventID   string `json:"event_id"`
	Type      string `json:"type"`
	WebhookID string `json:"webhook_id"`
	RoomID    string `json:"room_id"`
	RoomSlug  string `json:"room_slug"`
	Format    Format `json:"format"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	// LastStatus is the HTTP status of the last answer (absent when none came).
	LastStatus int    `json:"last_status,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	// Created is the event's time; Queued when its deliveries were stored.
	Created     time.Time  `json:"created"`
	Queued      time.Time  `json:"queued"`
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	// NextAttempt is set while pending.
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	Done        *time.Time `json:"done,omitempty"`
	Node        string     `json:"node"`
	// Body is what is posted (Bodies in DeliveryQuery).
	Body json.RawMessage `json:"body,omitempty"`
}

func (doc *deliveryDoc) delivery(withBody bool) Delivery {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	out := Delivery{
		ID: doc.ID.Hex(), EventID: doc.EventID, Type: doc.Type, WebhookID: doc.WebhookID, RoomID: doc.RoomID,
		RoomSlug: doc.RoomSlug, Format: doc.Format, Status: doc.Status, Attempts: doc.Attempts,
		LastStatus: doc.LastStatus, LastError: doc.LastError, Created: doc.Created.UTC(), Queued: doc.Queued.UTC(),
		LastAttempt: utc(doc.LastAttempt), Done: utc(doc.Done), Node: doc.Node,
	}
	if doc.Status == StatusPending {
		out.NextAttempt = utc(&doc.NextAttempt)
	}
	if withBody && json.Valid([]byte(doc.Body)) {
		out.Body = json.RawMessage(doc.Body)
	}
	return out
}

// DeliveryQuery selects deliveries for Deliveries. Empty fields select all.
type DeliveryQuery struct {
	WebhookID string // GlobalID or a webhook's id
	RoomID    string
	Status    string
	// Bodies includes what was posted.
	Bodies bool
	// Limit is the page size: default 50, at most 200.
	Limit int
	// Cursor is DeliveryPage.Next of the previous page.
	Cursor string
}

// DeliveryPage is one page of the delivery log, newest first.
type DeliveryPage struct {
	Deliveries []Delivery `json:"deliveries"`
	Next       string     `json:"next,omitempty"`
}

type deliveryCursor struct {
	Queued time.Time     `json:"q"`
	ID     bson.ObjectID `json:"i"`
}

// Deliveries lists the delivery log, newest first. Callers check who may see what (a
// room's owner its webhooks' deliveries, admins all).
func (d *Dispatcher) Deliveries(ctx context.Context, q DeliveryQuery) (DeliveryPage, error) {
	filter := bson.D{}
	if q.WebhookID != "" {
		filter = append(filter, bson.E{Key: "webhook_id", Value: q.WebhookID})
	}
	if q.RoomID != "" {
		filter = append(filter, bson.E{Key: "room_id", Value: q.RoomID})
	}
	switch q.Status {
	case "":
	case StatusPending, StatusDelivered, StatusFailed, StatusCanceled:
		filter = append(filter, bson.E{Key: "status", Value: q.Status})
	default:
		return DeliveryPage{}, invalid("status", "must be %s, %s, %s or %s", StatusPending, StatusDelivered, StatusFailed, StatusCanceled)
	}
	if q.Cursor != "" {
		c, ok := cursor.Decode[deliveryCursor](q.Cursor)
		if !ok {
			return DeliveryPage{}, invalid("cursor", "is not a cursor this server gave out")
		}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "queued", Value: bson.D{{Key: "$lt", Value: c.Queued}}}},
			bson.D{{Key: "queued", Value: c.Queued}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: c.ID}}}},
		}})
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 200)
	opts := options.Find().SetSort(bson.D{{Key: "queued", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit + 1))
	if !q.Bodies {
		opts.SetProjection(bson.D{{Key: "body", Value: 0}})
	}
	octx, cancel := d.op(ctx)
	defer cancel()
	cur, err := d.deliveries.Find(octx, filter, opts)
	if err != nil {
		return DeliveryPage{}, dbError("list deliveries", err)
	}
	var docs []deliveryDoc
	if err := cur.All(octx, &docs); err != nil {
		return DeliveryPage{}, dbError("list deliveries", err)
	}
	page := DeliveryPage{Deliveries: make([]Delivery, 0, min(len(docs), limit))}
	for i := range docs {
		if i == limit {
			last := docs[limit-1]
			page.Next = cursor.Encode(deliveryCursor{Queued: last.Queued, ID: last.ID})
			break
		}
		page.Deliveries = append(page.Deliveries, docs[i].delivery(q.Bodies))
	}
	return page, nil
}
