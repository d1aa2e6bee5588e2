// Package cluster is the registry of the onair nodes that share one MongoDB database, and
// the leases by which exactly one of them owns each piece of shared state at a time: a
// live stream, an in-flight recording upload.
//
// Collections:
//
//	nodes   {_id: node id, url, started, heartbeat, publishing: [{name, active}], viewers: [{name, n}],
//	         backlog {recordings, bytes_pending, parts_pending}, refusals: [{name, at, reason}]}
//	leases  {_id: "<resource>#<gen>", resource, kind, gen, node, at}
//
// Each node is the only writer of its nodes document, rewritten at every heartbeat with
// what it publishes, how many viewers watch through it, and the publishes it refused
// lately (for the streamers' dashboards, whichever node serves them).
//
// A lease is a series of generations, each inserted under a unique _id: whoever inserts
// generation n+1 of a resource owns it. Taking over is therefore decided by the unique
// index alone: no lease is ever an update, so nothing depends on concurrent updates of
// one document being atomic (see rooms/mongodb). A lease needs no
// renewal of its own: it is valid while its node's heartbeat is, so a node that restarts
// under its id still holds what it held. Releasing inserts a generation without a node.
//
// Times are the nodes' own clocks: keep them synchronised (NTP), well within StaleAfter.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/mongodb"
)

// DefaultStaleAfter is Config.StaleAfter's default: what other parts' delays that must
// outlast a node's death (e.g. adopting a dead node's recordings) are checked against.
const DefaultStaleAfter = 11 * time.Second

// Config configures a Registry. DB and NodeID are required.
type Config struct {
	DB *mongo.Database
	// NodeID names this process among the nodes; it must be unique among running ones,
	// and stable across restarts for a node to find what it owned.
	NodeID string
	// AdvertiseURL is how other nodes reach this node's HTTP port ("" when they cannot).
	AdvertiseURL string
	// HeartbeatInterval is how often this node writes its document (default 2 s).
	HeartbeatInterval time.Duration
	// StaleAfter is how long without a heartbeat before a node counts as dead and its
	// leases may be taken over (default 11 s; at least three heartbeats).
	StaleAfter time.Duration
	// OpTimeout bounds each MongoDB operation (default 3 s).
	OpTimeout time.Duration
	// Report, when set, is asked at every heartbeat what this node publishes and how many
	// viewers watch each stream through it; other nodes read it with Nodes.
	Report func() Report
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Report is what a node tells the others at each heartbeat.
type Report struct {
	Publishing []Activity
	Viewers    []Viewers
	// Backlog is what its recordings hold on its disk, for the operators' view.
	Backlog Backlog
	// Refusals are the publishes it refused lately, one per stream: Beat keeps the first
	// MaxRefusals, each reason cut to MaxRefusalReason bytes.
	Refusals []Refusal
}

// Bounds of a node's reported refusals: a publisher with a valid key can make a node
// refuse it, and each refusal lands in the node's document.
const (
	MaxRefusals      = 64
	MaxRefusalReason = 512
)

// Refusal is why a node last refused a publish of a stream after its key was accepted
// (a rendition sent to a node without the main rendition, a codec onair cannot serve).
type Refusal struct {
	Name   string    `bson:"name"`
	At     time.Time `bson:"at"`
	Reason string    `bson:"reason"`
}

// Backlog is what a node's recordings in progress hold on its local disk, not yet in the
// object store.
type Backlog struct {
	Recordings   int   `bson:"recordings"`
	BytesPending int64 `bson:"bytes_pending"`
	PartsPending int   `bson:"parts_pending"`
}

// Activity is a stream published on a node and when its publisher last sent data.
type Activity struct {
	Name   string    `bson:"name"`
	Active time.Time `bson:"active"`
}

// Viewers is how many viewers watch a stream through a node: those of its own streams and
// those of streams it fetches from other nodes for its viewers, never another node.
type Viewers struct {
	Name string `bson:"name"`
	N    int    `bson:"n"`
}

// Node is a node's document as last written.
type Node struct {
	ID         string     `bson:"_id"`
	URL        string     `bson:"url"`
	Started    time.Time  `bson:"started"`
	Heartbeat  time.Time  `bson:"heartbeat"`
	Publishing []Activity `bson:"publishing"`
	Viewers    []Viewers  `bson:"viewers"`
	Backlog    Backlog    `bson:"backlog"`
	Refusals   []Refusal  `bson:"refusals,omitempty"`
}

// Refusal is the node's report of its last refusal of a publish of name.
func (n Node) Refusal(name string) (Refusal, bool) {
	for _, r := range n.Refusals {
		if r.Name == name {
			return r, true
		}
	}
	return Refusal{}, false
}

// Active reports when the node's publisher of name last sent data (zero if it has none).
func (n Node) Active(name string) time.Time {
	for _, a := range n.Publishing {
		if a.Name == name {
			return a.Active
		}
	}
	return time.Time{}
}

// Registry is this node's place in the cluster: its heartbeat, the other nodes, and the
// leases it holds. It is safe for concurrent use.
type Registry struct {
	cfg     Config
	log     *slog.Logger
	nodes   *mongo.Collection
	leases  *mongo.Collection
	started time.Time

	mu      sync.Mutex
	watched map[*watch]struct{}
	// lookup is generations, the read of the watched leases' state, which a test makes as
	// slow as a MongoDB under load.
	lookup func(context.Context, bson.D) (map[string][]Lease, error)
}

// New checks cfg. It does not talk to MongoDB: call EnsureIndexes and Run.
func New(cfg Config) (*Registry, error) {
	if cfg.DB == nil || cfg.NodeID == "" {
		return nil, errors.New("cluster: Config.DB and Config.NodeID are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 2 * time.Second
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 3 * time.Second
	}
	if cfg.StaleAfter < 3*cfg.HeartbeatInterval {
		return nil, fmt.Errorf("cluster: StaleAfter %s must be at least three heartbeats of %s", cfg.StaleAfter, cfg.HeartbeatInterval)
	}
	r := &Registry{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "cluster", "node", cfg.NodeID),
		nodes:   cfg.DB.Collection("nodes"),
		leases:  cfg.DB.Collection("leases"),
		watched: map[*watch]struct{}{},
	}
	r.started = r.now()
	r.lookup = r.generations
	return r, nil
}

// ID is this node's id.
func (r *Registry) ID() string { return r.cfg.NodeID }

// StaleAfter is how long a silent node stays alive for the others.
func (r *Registry) StaleAfter() time.Duration { return r.cfg.StaleAfter }

// EnsureIndexes creates the leases' index (idempotent).
func (r *Registry) EnsureIndexes(ctx context.Context) error {
	ctx, cancel := r.op(ctx)
	defer cancel()
	if err := mongodb.CreateIndexes(ctx, r.leases,
		mongodb.Index{Name: "resource_gen", Keys: mongodb.Keys("resource", 1, "gen", -1)},
		mongodb.Index{Name: "kind", Keys: mongodb.Keys("kind", 1)},
	); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// Run writes this node's heartbeat at once and then every HeartbeatInterval until ctx
// ends. Beside it, at the same pace, it checks the watched leases and, every minute,
// prunes old lease generations: that is a query per lease, which on a slow MongoDB can
// take longer than StaleAfter, and a heartbeat waiting for it would have the other nodes
// take this live node for dead, end its broadcasts and take its leases over.
func (r *Registry) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { r.upkeep(ctx) })
	beat := time.NewTicker(r.cfg.HeartbeatInterval)
	defer beat.Stop()
	for {
		if err := r.Beat(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("heartbeat not written", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
		}
	}
}

// upkeep checks the watched leases every HeartbeatInterval and prunes old lease
// generations every minute, until ctx ends.
func (r *Registry) upkeep(ctx context.Context) {
	check := time.NewTicker(r.cfg.HeartbeatInterval)
	defer check.Stop()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for {
		r.checkWatched(ctx)
		select {
		case <-ctx.Done():
			return
		case <-check.C:
		case <-prune.C:
			if err := r.prune(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("pruning old lease generations", "err", err)
			}
		}
	}
}

// Beat writes this node's document now.
func (r *Registry) Beat(ctx context.Context) error {
	var rep Report
	if r.cfg.Report != nil {
		rep = r.cfg.Report()
	}
	if rep.Publishing == nil {
		rep.Publishing = []Activity{}
	}
	if rep.Viewers == nil {
		rep.Viewers = []Viewers{}
	}
	if len(rep.Refusals) > MaxRefusals {
		rep.Refusals = rep.Refusals[:MaxRefusals]
	}
	for i := range rep.Refusals {
		if f := &rep.Refusals[i]; len(f.Reason) > MaxRefusalReason {
			f.Reason = strings.ToValidUTF8(f.Reason[:MaxRefusalReason], "")
		}
	}
	ctx, cancel := r.op(ctx)
	defer cancel()
	_, err := r.nodes.ReplaceOne(ctx, bson.D{{Key: "_id", Value: r.cfg.NodeID}}, Node{
		ID: r.cfg.NodeID, URL: r.cfg.AdvertiseURL, Started: r.started, Heartbeat: r.now(),
		Publishing: rep.Publishing, Viewers: rep.Viewers, Backlog: rep.Backlog, Refusals: rep.Refusals,
	}, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("cluster: write heartbeat of %s: %w", r.cfg.NodeID, err)
	}
	return nil
}

// Alive reports whether a node's heartbeat is within StaleAfter of now.
func (r *Registry) Alive(n Node) bool { return r.now().Sub(n.Heartbeat) < r.cfg.StaleAfter }

// Nodes returns the nodes that are alive.
func (r *Registry) Nodes(ctx context.Context) ([]Node, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	cur, err := r.nodes.Find(ctx, bson.D{{Key: "heartbeat", Value: bson.D{{Key: "$gt", Value: r.now().Add(-r.cfg.StaleAfter)}}}})
	if err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	var out []Node
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	return out, nil
}

// ViewerCounts returns how many viewers watch each stream over the whole cluster: the sum
// of the alive nodes' last reports, each node counting the viewers that reach it, whether
// it has the stream or fetches it from the node that does.
func (r *Registry) ViewerCounts(ctx context.Context) (map[string]int, error) {
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, n := range nodes {
		for _, v := range n.Viewers {
			counts[v.Name] += v.N
		}
	}
	return counts, nil
}

// Node returns a node's document and whether it is alive; ok is false for a node that
// never wrote one.
func (r *Registry) Node(ctx context.Context, id string) (n Node, alive, ok bool, err error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	err = r.nodes.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&n)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Node{}, false, false, nil
	}
	if err != nil {
		return Node{}, false, false, fmt.Errorf("cluster: read node %s: %w", id, err)
	}
	return n, r.Alive(n), true, nil
}

// IsAlive reports whether the node with this id is alive.
func (r *Registry) IsAlive(ctx context.Context, id string) (bool, error) {
	_, alive, _, err := r.Node(ctx, id)
	return alive, err
}

func (r *Registry) now() time.Time { return r.cfg.Now().UTC().Truncate(time.Millisecond) }

func (r *Registry) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.cfg.OpTimeout)
}
