package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/scripts/testenv"
)

// clock is a settable clock shared by the nodes of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newNode(t *testing.T, db *mongo.Database, id string, c *clock) *Registry {
	t.Helper()
	r, err := New(Config{DB: db, NodeID: id, AdvertiseURL: "http://" + id, Now: c.Now, OpTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Beat(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLeases(t *testing.T) {
	m := testenv.StartMongoDB(t)
	ctx := context.Background()
	steps := []struct {
		name string
		run  func(t *testing.T, a, b *Registry, c *clock)
	}{
		{"a new resource is taken at once and held again by its holder", func(t *testing.T, a, b *Registry, c *clock) {
			l, err := a.Acquire(ctx, "k", "r", nil)
			if err != nil || l.Gen != 1 || l.Node != "a" {
				t.Fatalf("Acquire = %+v, %v", l, err)
			}
			again, err := a.Acquire(ctx, "k", "r", nil)
			if err != nil || again.Gen != 1 {
				t.Fatalf("Acquire by the holder = %+v, %v", again, err)
			}
		}},
		{"a live holder keeps it; IfDead does not take it", func(t *testing.T, a, b *Registry, c *clock) {
			if _, err := a.Acquire(ctx, "k", "r", nil); err != nil {
				t.Fatal(err)
			}
			_, err := b.Acquire(ctx, "k", "r", IfDead)
			var held *HeldError
			if !errors.As(err, &held) || !errors.Is(err, ErrHeld) || held.Lease.Node != "a" || !held.Alive {
				t.Fatalf("Acquire of a live node's lease: %v (%+v)", err, held)
			}
		}},
		{"a dead holder's lease is taken over and the holder sees it lost", func(t *testing.T, a, b *Registry, c *clock) {
			l, err := a.Acquire(ctx, "k", "r", nil)
			if err != nil {
				t.Fatal(err)
			}
			c.add(a.StaleAfter())
			if err := b.Beat(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Acquire(ctx, "k", "r", b.IfDeadFor(2*a.StaleAfter())); !errors.Is(err, ErrHeld) {
				t.Fatalf("taken over before IfDeadFor's delay: %v", err)
			}
			got, err := b.Acquire(ctx, "k", "r", IfDead)
			if err != nil || got.Gen != 2 || got.Node != "b" {
				t.Fatalf("takeover = %+v, %v", got, err)
			}
			if err := a.Holds(ctx, l); !errors.Is(err, ErrLost) {
				t.Fatalf("Holds of the old holder = %v, want ErrLost", err)
			}
			if err := a.Release(ctx, l); !errors.Is(err, ErrLost) {
				t.Fatalf("Release by the old holder = %v, want ErrLost", err)
			}
			if err := b.Holds(ctx, got); err != nil {
				t.Fatal(err)
			}
		}},
		{"a released lease is taken at once by anyone, numbering on", func(t *testing.T, a, b *Registry, c *clock) {
			l, _ := a.Acquire(ctx, "k", "r", nil)
			if err := a.Release(ctx, l); err != nil {
				t.Fatal(err)
			}
			got, err := b.Acquire(ctx, "k", "r", nil)
			if err != nil || got.Gen != 3 {
				t.Fatalf("Acquire after release = %+v, %v", got, err)
			}
			held, err := b.Leases(ctx, "k")
			if err != nil || len(held) != 1 || held[0].Node != "b" {
				t.Fatalf("Leases = %+v, %v", held, err)
			}
		}},
		{"racing takeovers: exactly one wins", func(t *testing.T, a, b *Registry, c *clock) {
			if _, err := a.Acquire(ctx, "k", "race", nil); err != nil {
				t.Fatal(err)
			}
			c.add(a.StaleAfter())
			nodes := []*Registry{b, newNode(t, b.cfg.DB, "c", c), newNode(t, b.cfg.DB, "d", c)}
			var wg sync.WaitGroup
			results := make([]error, len(nodes))
			for i, n := range nodes {
				wg.Go(func() { _, results[i] = n.Acquire(ctx, "k", "race", IfDead) })
			}
			wg.Wait()
			won := 0
			for _, err := range results {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, ErrHeld):
					t.Fatal(err)
				}
			}
			if won != 1 {
				t.Fatalf("%d nodes won the race: %v", won, results)
			}
		}},
		{"a holder back under its id renews its lease, unless another node took it over first", func(t *testing.T, a, b *Registry, c *clock) {
			l, err := a.Acquire(ctx, "k", "back", nil)
			if err != nil {
				t.Fatal(err)
			}
			renewed, err := a.Renew(ctx, l)
			if err != nil || renewed.Gen != 2 || renewed.Node != "a" {
				t.Fatalf("Renew = %+v, %v", renewed, err)
			}
			if _, err := a.Renew(ctx, l); !errors.Is(err, ErrLost) {
				t.Fatalf("Renew of a superseded generation = %v, want ErrLost", err)
			}
			c.add(a.StaleAfter())
			if err := b.Beat(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Acquire(ctx, "k", "back", IfDead); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Renew(ctx, renewed); !errors.Is(err, ErrLost) {
				t.Fatalf("Renew after a takeover = %v, want ErrLost", err)
			}
		}},
		{"Finish forgets the resource; prune keeps only the newest generation", func(t *testing.T, a, b *Registry, c *clock) {
			l, _ := a.Acquire(ctx, "k", "once", nil)
			if err := a.Finish(ctx, l); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := a.Current(ctx, "once"); ok {
				t.Fatal("a finished resource still has a lease")
			}
			for range 3 {
				l, err := a.Acquire(ctx, "k", "many", nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := a.Release(ctx, l); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.prune(ctx); err != nil {
				t.Fatal(err)
			}
			gens, err := a.generations(ctx, bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			if g := gens["many"]; len(g) != 1 || g[0].Gen != 6 || !g[0].Released() {
				t.Fatalf("after prune: %+v", g)
			}
			l, err = b.Acquire(ctx, "k", "many", nil)
			if err != nil || l.Gen != 7 {
				t.Fatalf("Acquire after prune = %+v, %v", l, err)
			}
		}},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			db := m.Database(t, "cluster")
			c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)}
			s.run(t, newNode(t, db, "a", c), newNode(t, db, "b", c), c)
		})
	}
}

func TestNodesAndWatch(t *testing.T) {
	m := testenv.StartMongoDB(t)
	db := m.Database(t, "cluster")
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	reported := Report{Publishing: []Activity{{Name: "s", Active: c.Now()}}, Viewers: []Viewers{{Name: "s", N: 3}}}
	a, err := New(Config{DB: db, NodeID: "a", AdvertiseURL: "http://a", Now: c.Now, Report: func() Report { return reported }})
	if err != nil {
		t.Fatal(err)
	}
	b := newNode(t, db, "b", c)
	if err := a.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	nodes, err := b.Nodes(ctx)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("Nodes = %+v, %v", nodes, err)
	}
	n, alive, ok, err := b.Node(ctx, "a")
	if err != nil || !ok || !alive || n.URL != "http://a" || !n.Active("s").Equal(c.Now()) || n.Viewers[0].N != 3 {
		t.Fatalf("Node(a) = %+v alive=%v ok=%v, %v", n, alive, ok, err)
	}

	l, err := a.Acquire(ctx, "k", "w", nil)
	if err != nil {
		t.Fatal(err)
	}
	lost, stop := a.Watch(l)
	defer stop()
	c.add(a.StaleAfter())
	if err := b.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if nodes, _ := b.Nodes(ctx); len(nodes) != 1 || nodes[0].ID != "b" {
		t.Fatalf("Nodes after a went silent = %+v", nodes)
	}
	if _, err := b.Acquire(ctx, "k", "w", IfDead); err != nil {
		t.Fatal(err)
	}
	runInBackground(t, a)
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not report the lost lease")
	}
}

// A node whose lease checks are slow, as on a MongoDB under load, goes on writing its
// heartbeat: the others must not take it for dead while it runs.
func TestHeartbeatDoesNotWaitForLeaseChecks(t *testing.T) {
	m := testenv.StartMongoDB(t)
	db := m.Database(t, "cluster")
	ctx := context.Background()
	a, err := New(Config{DB: db, NodeID: "a", HeartbeatInterval: 50 * time.Millisecond, StaleAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := a.Acquire(ctx, "k", "slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, stop := a.Watch(l)
	defer stop()
	checking := make(chan struct{}, 1)
	a.lookup = func(ctx context.Context, _ bson.D) (map[string][]Lease, error) {
		select {
		case checking <- struct{}{}:
		default:
		}
		<-ctx.Done() // a check that outlasts the test
		return nil, ctx.Err()
	}
	runInBackground(t, a)
	<-checking
	b := newNode(t, db, "b", &clock{t: time.Now()})
	// The first heartbeat and the first check start together; either may land first.
	var first time.Time
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		n, _, ok, err := b.Node(ctx, "a")
		switch {
		case err != nil || !ok:
		case first.IsZero():
			first = n.Heartbeat
		case n.Heartbeat.After(first):
			return true, ""
		}
		return false, fmt.Sprintf("no heartbeat since %v while a lease check was under way (ok %v, err %v)", first, ok, err)
	})
}

// runInBackground runs r until the test ends.
func runInBackground(t *testing.T, r *Registry) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = r.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}
