package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

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
