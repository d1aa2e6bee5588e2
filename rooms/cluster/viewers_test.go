package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"onair/scripts/testenv"
)

// A stream's viewers are the sum of what the alive nodes report, each its own viewers.
func TestViewerCounts(t *testing.T) {
	db := testenv.StartMongoDB(t).Database(t, "cluster")
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	reports := map[string][]Viewers{
		"a": {{Name: "cam", N: 1}},                        // the origin: its own viewers
		"b": {{Name: "cam", N: 2}, {Name: "other", N: 4}}, // viewers it proxies
		"c": {{Name: "cam", N: 3}},
		"d": nil, // no viewers
	}
	nodes := map[string]*Registry{}
	for id, v := range reports {
		r, err := New(Config{DB: db, NodeID: id, Now: c.Now, Report: func() Report { return Report{Viewers: v} }})
		if err != nil {
			t.Fatal(err)
		}
		nodes[id] = r
	}
	beat := func(ids ...string) {
		for _, id := range ids {
			if err := nodes[id].Beat(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	beat("a", "b", "c", "d")
	counts, err := nodes["d"].ViewerCounts(ctx)
	if want := "map[cam:6 other:4]"; err != nil || fmt.Sprint(counts) != want {
		t.Fatalf("ViewerCounts = %v, %v; want %s", counts, err, want)
	}
	// A node that stops reporting stops counting once it is dead.
	c.add(nodes["a"].StaleAfter())
	beat("a", "c", "d")
	counts, err = nodes["d"].ViewerCounts(ctx)
	if want := "map[cam:4]"; err != nil || fmt.Sprint(counts) != want {
		t.Fatalf("ViewerCounts without node b = %v, %v; want %s", counts, err, want)
	}
}

// A node's refusals reach the other nodes through its heartbeat, bounded in count and
// size, and leave with the node.
func TestRefusalsReported(t *testing.T) {
	db := testenv.StartMongoDB(t).Database(t, "cluster")
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	many := make([]Refusal, MaxRefusals+10)
	for i := range many {
		many[i] = Refusal{Name: fmt.Sprintf("s%d", i), At: c.Now().UTC().Truncate(time.Millisecond),
			Reason: strings.Repeat("é", MaxRefusalReason)}
	}
	a, err := New(Config{DB: db, NodeID: "a", Now: c.Now, Report: func() Report { return Report{Refusals: many} }})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{DB: db, NodeID: "b", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	n, alive, ok, err := b.Node(ctx, "a")
	if err != nil || !alive || !ok {
		t.Fatalf("node a: alive %v, found %v, %v", alive, ok, err)
	}
	if len(n.Refusals) != MaxRefusals {
		t.Fatalf("%d refusals stored, want %d", len(n.Refusals), MaxRefusals)
	}
	r, found := n.Refusal("s0")
	if !found || len(r.Reason) > MaxRefusalReason || !utf8.ValidString(r.Reason) || r.Reason == "" {
		t.Fatalf("refusal of s0: %v, %d bytes", found, len(r.Reason))
	}
	if _, found := n.Refusal(fmt.Sprintf("s%d", MaxRefusals)); found {
		t.Fatal("a refusal past the bound was stored")
	}
	// A dead node's refusals are no longer among the alive nodes'.
	c.add(a.StaleAfter())
	if err := b.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	nodes, err := b.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if len(n.Refusals) > 0 {
			t.Fatalf("node %s still reports refusals", n.ID)
		}
	}
}
