package rooms

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/cluster"
)

// Broadcasts left open: a node that crashed, or died, leaves its broadcasts open and their
// rooms live. It ends its own at its next start (same node id), and the other nodes end
// those of a node the registry counts as dead; whoever takes the stream's lease sets the
// room offline and announces the end.

// EndStaleBroadcasts ends the broadcasts of dead nodes (no heartbeat for the cluster's
// StaleAfter: crashed, or cut off from MongoDB that long) and sets their rooms offline;
// Run calls it periodically. It returns how many it ended.
func (s *Service) EndStaleBroadcasts(ctx context.Context) (int, error) {
	octx, cancel := s.op(ctx)
	nodes, err := s.cfg.Cluster.Nodes(octx)
	cancel()
	if err != nil {
		return 0, dbError("list live nodes", err)
	}
	alive := bson.A{s.node()} // this node's own are ended by their goroutines, or by endOrphans
	for _, n := range nodes {
		alive = append(alive, n.ID)
	}
	return s.endOpenBroadcasts(ctx, bson.D{{Key: "node", Value: bson.D{{Key: "$nin", Value: alive}}}}, "node stopped reporting")
}

// endOrphans ends the broadcasts this node left open when it stopped without closing
// them (a crash), so that its rooms do not show live until it counts as dead.
func (s *Service) endOrphans(ctx context.Context) (int, error) {
	return s.endOpenBroadcasts(ctx, bson.D{{Key: "node", Value: s.node()}}, "node restarted")
}

// endOpenBroadcasts ends the open broadcasts matching cond that do not run in this
// process, at their last heartbeat. A broadcast's room is set offline, and its end
// announced, only by the node that takes the stream's lease from the dead node: several
// nodes may find the same broadcast, one of them speaks for it.
func (s *Service) endOpenBroadcasts(ctx context.Context, cond bson.D, reason string) (int, error) {
	filter := append(bson.D{{Key: "ended", Value: nil}}, cond...)
	var docs []broadcastDoc
	err := func() error {
		octx, cancel := s.op(ctx)
		defer cancel()
		cur, err := s.broadcasts.Find(octx, filter, options.Find().SetLimit(100))
		if err == nil {
			err = cur.All(octx, &docs)
		}
		return err
	}()
	if err != nil {
		return 0, dbError("find open broadcasts", err)
	}
	n := 0
	for i := range docs {
		d := &docs[i]
		if s.live.has(d.ID) {
			continue
		}
		ended, err := s.endLost(ctx, d, reason)
		if err != nil {
			return n, err
		}
		if ended {
			n++
		}
	}
	return n, nil
}

// endLost ends one broadcast whose node is gone and reports whether it did.
func (s *Service) endLost(ctx context.Context, d *broadcastDoc, reason string) (bool, error) {
	name := d.stream()
	unlock := s.streamLocks.lock(name)
	defer unlock()
	// The stream's lease decides who speaks for the room. This node has it already when
	// one of its own publishers took the stream over: then the room is that publisher's.
	var lease cluster.Lease
	speak := false
	if !s.claimed(name) {
		octx, cancel := s.op(ctx)
		l, err := s.cfg.Cluster.Acquire(octx, streamKind, streamResource(name), cluster.IfDead)
		cancel()
		switch {
		case err == nil:
			lease, speak = l, true
		case !errors.Is(err, cluster.ErrHeld):
			return false, dbError("take the stream lease of "+name, err)
		}
	}
	release := func() {
		if speak {
			if err := s.cfg.Cluster.Release(ctx, lease); err != nil && !errors.Is(err, cluster.ErrLost) {
				s.log.Warn("stream lease not released after ending a lost broadcast", "stream", name, "err", err)
			}
		}
	}
	defer release()

	ended := d.Heartbeat
	d.Ended, d.EndReason = &ended, reason
	octx, cancel := s.op(ctx)
	res, err := s.broadcasts.UpdateOne(octx, bson.D{{Key: "_id", Value: d.ID}, {Key: "ended", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "ended", Value: ended}, {Key: "end_reason", Value: reason}}}})
	cancel()
	if err != nil {
		return false, dbError("end open broadcast", err)
	}
	modified := res.ModifiedCount > 0
	if modified {
		s.log.Warn("broadcast ended: "+reason, "broadcast_id", d.ID.Hex(), "stream", name, "node", d.Node)
	}
	if !speak {
		return modified, nil
	}
	// Whoever wrote the end, the lease holder sets the room offline, if this broadcast
	// still holds it.
	room, err := s.setOffline(ctx, d.RoomID, d.ID, s.now())
	if errors.Is(err, ErrNotFound) {
		return modified, nil
	}
	if err != nil {
		return modified, err
	}
	if s.cfg.OnEnded != nil {
		s.cfg.OnEnded(s.room(&room), s.broadcastOf(d))
	}
	return true, nil
}
