package rooms

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/rooms/cluster"
	"onair/scripts/testenv"
)

// reportingNode is a node of the test whose heartbeat, written when the test calls
// report, carries the viewers the test sets. Given the Service's own node id, it stands
// for that node's reports.
type reportingNode struct {
	e       *testEnv
	reg     *cluster.Registry
	viewers []cluster.Viewers // read by the heartbeat, which report calls synchronously
}

func (e *testEnv) reportingNode(id string) *reportingNode {
	e.t.Helper()
	n := &reportingNode{e: e}
	var err error
	n.reg, err = cluster.New(cluster.Config{DB: e.db, NodeID: id, Now: e.clock.Now, OpTimeout: time.Second,
		Report: func() cluster.Report { return cluster.Report{Viewers: n.viewers} }})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// report writes the node's heartbeat with these viewers by stream.
func (n *reportingNode) report(viewers map[string]int) {
	n.e.t.Helper()
	n.viewers = nil
	for name, v := range viewers {
		n.viewers = append(n.viewers, cluster.Viewers{Name: name, N: v})
	}
	if err := n.reg.Beat(context.Background()); err != nil {
		n.e.t.Fatal(err)
	}
}

// waitViewers waits until the room's count on this node is want.
func (e *testEnv) waitViewers(slug string, want int) {
	e.t.Helper()
	testenv.Eventually(e.t, 2*time.Second, func() (bool, string) {
		r, err := e.svc.GetRoom(context.Background(), slug)
		if err != nil {
			return false, err.Error()
		}
		return r.Viewers == want, fmt.Sprintf("%s: %d viewers, want %d", slug, r.Viewers, want)
	})
}

// The node with the live broadcast sums the viewers every alive node reports into the
// room's count, the broadcast's peak and its total.
func TestClusterViewers(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.signUp("alice").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")
	h := newTestHub(e)
	h.goLive(key)
	live := e.waitLive(room.Slug, true)
	cam := room.Slug
	nodes := map[string]*reportingNode{
		"a": e.reportingNode("node-a"), // this node, where the stream is live
		"b": e.reportingNode("node-b"),
		"c": e.reportingNode("node-c"),
	}
	steps := []struct {
		name    string
		reports map[string]map[string]int // node → its viewers by stream
		dead    bool                      // the nodes not reporting now die meanwhile
		want    int
	}{
		{"the viewers of every node add up", map[string]map[string]int{"a": {cam: 1}, "b": {cam: 2}, "c": {cam: 3}}, false, 6},
		{"viewers leave node b", map[string]map[string]int{"b": {}}, false, 4},
		{"more join through node b", map[string]map[string]int{"b": {cam: 5}}, false, 9},
		{"other streams' viewers do not count", map[string]map[string]int{"c": {cam: 3, "other": 7}}, false, 9},
		{"a dead node's report stops counting", map[string]map[string]int{"a": {cam: 1}, "b": {cam: 5}}, true, 6},
	}
	stale := e.svc.cfg.Cluster.StaleAfter()
	for _, s := range steps {
		if s.dead {
			// Half way, so that the nodes reporting now stay alive throughout and the sum
			// never dips (which would add to the total when it rose back).
			e.clock.Advance(stale / 2)
		}
		for id, v := range s.reports {
			nodes[id].report(v)
		}
		if s.dead {
			e.clock.Advance(stale/2 + time.Millisecond)
		}
		e.waitViewers(room.Slug, s.want)
		t.Logf("%s: %d", s.name, s.want)
	}
	testenv.Eventually(t, 2*time.Second, func() (bool, string) {
		var d roomDoc
		err := e.db.Collection("rooms").FindOne(context.Background(), bson.D{{Key: "slug", Value: room.Slug}}).Decode(&d)
		return err == nil && d.Viewers == 6, fmt.Sprintf("the sum written to the room: %d viewers, %v", d.Viewers, err)
	})

	h.end(key)
	e.waitLive(room.Slug, false)
	b, err := e.svc.GetBroadcast(e.ctx(), live.BroadcastID)
	if err != nil {
		t.Fatal(err)
	}
	// Peak 9; total 6 who came, then 5 more through node b.
	if b.PeakViewers != 9 || b.TotalViewers != 11 {
		t.Fatalf("broadcast peak %d, total %d; want 9 and 11", b.PeakViewers, b.TotalViewers)
	}
}
