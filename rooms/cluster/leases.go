package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/mongodb"
)

// Lease is one generation of a resource's ownership.
type Lease struct {
	Resource string    `bson:"resource"`
	Kind     string    `bson:"kind"`
	Gen      int64     `bson:"gen"`
	Node     string    `bson:"node"` // "" once released
	At       time.Time `bson:"at"`   // when this generation began
}

// Released reports whether the lease's holder gave it up.
func (l Lease) Released() bool { return l.Node == "" }

// Lease errors.
var (
	// ErrHeld: another node holds the resource and the policy did not let it be taken over.
	ErrHeld = errors.New("held by another node")
	// ErrLost: another node took the lease over; its former holder must stop acting on it.
	ErrLost = errors.New("lease taken over by another node")
)

// HeldError is the ErrHeld of Acquire, with the holder as last seen. errors.Is(err,
// ErrHeld) holds for it.
type HeldError struct {
	Lease  Lease
	Holder Node // zero when the holder never wrote a node document
	Alive  bool
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s: %s by node %s", e.Lease.Resource, ErrHeld, e.Lease.Node)
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Policy decides whether the current lease of a resource, held by another node, may be
// taken over. holder is that node's document (zero if it has none) and alive whether
// its heartbeat is recent.
type Policy func(cur Lease, holder Node, alive bool) bool

// IfDead takes over the leases of dead nodes only.
func IfDead(_ Lease, _ Node, alive bool) bool { return !alive }

// IfDeadFor takes over the leases of nodes silent for at least d (longer than StaleAfter,
// for work that a node restarting under its id should get the chance to finish itself).
func (r *Registry) IfDeadFor(d time.Duration) Policy {
	return func(_ Lease, holder Node, alive bool) bool {
		return !alive && r.now().Sub(holder.Heartbeat) >= d
	}
}

func leaseID(resource string, gen int64) string { return fmt.Sprintf("%s#%d", resource, gen) }

// Acquire makes this node the holder of resource: a new resource, or one released, is
// taken at once; one this node holds already is returned as it is; one another node holds
// is taken over only if takeOver says so (nil: never), else Acquire fails with a
// *HeldError. When two nodes race, the unique index picks one and the other gets ErrHeld.
func (r *Registry) Acquire(ctx context.Context, kind, resource string, takeOver Policy) (Lease, error) {
	cur, ok, err := r.Current(ctx, resource)
	if err != nil {
		return Lease{}, err
	}
	switch {
	case ok && cur.Node == r.cfg.NodeID:
		return cur, nil
	case ok && !cur.Released():
		holder, alive, _, err := r.Node(ctx, cur.Node)
		if err != nil {
			return Lease{}, err
		}
		if takeOver == nil || !takeOver(cur, holder, alive) {
			return Lease{}, &HeldError{Lease: cur, Holder: holder, Alive: alive}
		}
		r.log.Info("taking over a lease", "resource", resource, "from", cur.Node, "holder_alive", alive, "holder_heartbeat", holder.Heartbeat)
	}
	next := Lease{Resource: resource, Kind: kind, Gen: cur.Gen + 1, Node: r.cfg.NodeID, At: r.now()}
	if err := r.insert(ctx, next); err != nil {
		if mongodb.IsDup(err) {
			won, _, rerr := r.Current(ctx, resource)
			if rerr != nil {
				return Lease{}, rerr
			}
			return Lease{}, &HeldError{Lease: won}
		}
		return Lease{}, err
	}
	return next, nil
}

func (r *Registry) insert(ctx context.Context, l Lease) error {
	ctx, cancel := r.op(ctx)
	defer cancel()
	doc := bson.D{
		{Key: "_id", Value: leaseID(l.Resource, l.Gen)}, {Key: "resource", Value: l.Resource}, {Key: "kind", Value: l.Kind},
		{Key: "gen", Value: l.Gen}, {Key: "node", Value: l.Node}, {Key: "at", Value: l.At},
	}
	if _, err := r.leases.InsertOne(ctx, doc); err != nil {
		return fmt.Errorf("cluster: lease %s generation %d: %w", l.Resource, l.Gen, err)
	}
	return nil
}

// Current returns the newest generation of resource's lease; ok is false when it has none.
func (r *Registry) Current(ctx context.Context, resource string) (l Lease, ok bool, err error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	err = r.leases.FindOne(ctx, bson.D{{Key: "resource", Value: resource}},
		options.FindOne().SetSort(bson.D{{Key: "gen", Value: -1}})).Decode(&l)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("cluster: read lease of %s: %w", resource, err)
	}
	return l, true, nil
}

// Holds returns nil while l is still the newest generation of its resource, ErrLost once
// another has begun.
func (r *Registry) Holds(ctx context.Context, l Lease) error {
	cur, ok, err := r.Current(ctx, l.Resource)
	if err != nil {
		return err
	}
	if !ok || cur.Gen != l.Gen || cur.Node != l.Node {
		return fmt.Errorf("%s generation %d: %w", l.Resource, l.Gen, ErrLost)
	}
	return nil
}

// Renew begins a new generation of l for this node, its holder. A node that finds, on
// restart, a lease it held before calls it before acting on the resource: a takeover
// racing with it (another node deciding from this node's old heartbeat that it is dead)
// then inserts the same generation, and the unique index lets only one of them act. It
// fails with ErrLost when another node took the lease over first.
func (r *Registry) Renew(ctx context.Context, l Lease) (Lease, error) {
	return r.follow(ctx, l, r.cfg.NodeID)
}

// follow inserts the generation after l, held by node ("": released), if l is still the
// newest.
func (r *Registry) follow(ctx context.Context, l Lease, node string) (Lease, error) {
	if err := r.Holds(ctx, l); err != nil {
		return Lease{}, err
	}
	next := Lease{Resource: l.Resource, Kind: l.Kind, Gen: l.Gen + 1, Node: node, At: r.now()}
	if err := r.insert(ctx, next); err != nil {
		if mongodb.IsDup(err) {
			return Lease{}, fmt.Errorf("%s generation %d: %w", l.Resource, l.Gen, ErrLost)
		}
		return Lease{}, err
	}
	return next, nil
}

// Release gives l up, so that any node may take the resource at once. It fails with
// ErrLost when another node took it over first (then it is theirs).
func (r *Registry) Release(ctx context.Context, l Lease) error {
	_, err := r.follow(ctx, l, "")
	return err
}

// Finish ends a resource that is never taken again (a recording completed): its lease
// generations are deleted. It fails with ErrLost when l is no longer the newest.
func (r *Registry) Finish(ctx context.Context, l Lease) error {
	if err := r.Holds(ctx, l); err != nil {
		return err
	}
	ctx, cancel := r.op(ctx)
	defer cancel()
	if _, err := r.leases.DeleteMany(ctx, bson.D{{Key: "resource", Value: l.Resource}}); err != nil {
		return fmt.Errorf("cluster: delete lease of %s: %w", l.Resource, err)
	}
	return nil
}

// Leases returns the newest generation of every resource of kind that is held (not
// released), by any node.
func (r *Registry) Leases(ctx context.Context, kind string) ([]Lease, error) {
	all, err := r.generations(ctx, bson.D{{Key: "kind", Value: kind}})
	if err != nil {
		return nil, err
	}
	var out []Lease
	for _, gens := range all {
		if l := gens[len(gens)-1]; !l.Released() {
			out = append(out, l)
		}
	}
	return out, nil
}

// generations groups the lease documents matching filter by resource, oldest first.
func (r *Registry) generations(ctx context.Context, filter bson.D) (map[string][]Lease, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	cur, err := r.leases.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "resource", Value: 1}, {Key: "gen", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("cluster: list leases: %w", err)
	}
	var docs []Lease
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("cluster: list leases: %w", err)
	}
	out := map[string][]Lease{}
	for _, l := range docs {
		out[l.Resource] = append(out[l.Resource], l)
	}
	return out, nil
}

// prune deletes every generation but the newest of each resource. The newest stays, even
// released, so that the next Acquire continues the numbering instead of restarting it
// under a racing acquirer's feet.
func (r *Registry) prune(ctx context.Context) error {
	all, err := r.generations(ctx, bson.D{})
	if err != nil {
		return err
	}
	var old bson.A
	for _, gens := range all {
		for _, l := range gens[:len(gens)-1] {
			old = append(old, leaseID(l.Resource, l.Gen))
		}
	}
	if len(old) == 0 {
		return nil
	}
	ctx, cancel := r.op(ctx)
	defer cancel()
	if _, err := r.leases.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: old}}}}); err != nil {
		return fmt.Errorf("cluster: prune leases: %w", err)
	}
	return nil
}

// watch is a lease whose loss Run reports.
type watch struct {
	lease Lease
	lost  chan struct{}
}

// Watch reports the loss of l: the returned channel is closed once Run finds that another
// node took it over (checked at every heartbeat). stop ends the watch.
func (r *Registry) Watch(l Lease) (lost <-chan struct{}, stop func()) {
	w := &watch{lease: l, lost: make(chan struct{})}
	r.mu.Lock()
	r.watched[w] = struct{}{}
	r.mu.Unlock()
	return w.lost, func() {
		r.mu.Lock()
		delete(r.watched, w)
		r.mu.Unlock()
	}
}

func (r *Registry) checkWatched(ctx context.Context) {
	r.mu.Lock()
	ws := make([]*watch, 0, len(r.watched))
	resources := bson.A{}
	for w := range r.watched {
		ws = append(ws, w)
		resources = append(resources, w.lease.Resource)
	}
	r.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	// One query for every lease this node watches, not one each: the database scans the
	// collection per query, and a node may hold dozens of streams.
	all, err := r.lookup(ctx, bson.D{{Key: "resource", Value: bson.D{{Key: "$in", Value: resources}}}})
	if err != nil {
		return // unknown while MongoDB is away: keep acting as the holder
	}
	for _, w := range ws {
		gens := all[w.lease.Resource]
		if n := len(gens); n > 0 && gens[n-1].Gen == w.lease.Gen && gens[n-1].Node == w.lease.Node {
			continue
		}
		r.mu.Lock()
		_, still := r.watched[w]
		delete(r.watched, w)
		r.mu.Unlock()
		if still {
			r.log.Warn("lease lost to another node", "resource", w.lease.Resource, "gen", w.lease.Gen)
			close(w.lost)
		}
	}
}
