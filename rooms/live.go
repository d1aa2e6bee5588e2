package rooms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"onair/rooms/cluster"
)

// A live stream is owned by one node of the cluster at a time, through a lease on it:
// the node whose publisher holds it is the only one that may put its room live, end its
// broadcast, set the room offline and announce either. The lease is taken before a
// publisher is accepted (Claim), given up when the node's last publisher of the stream
// leaves, and taken over by another node only when the holder is dead or its publisher has
// been quiet for the hub's takeover delay (OBS reconnecting through a load balancer).

const streamKind = "stream"

func streamResource(name string) string { return streamKind + "/" + name }

// Claim takes the stream's lease for this node, before a publisher is accepted on a stream
// that has none here (cmd/onair asks it for the media hub). It fails with ErrStreamBusy
// while a publisher on another node holds the stream and has sent data within quiet (or
// that node has not been given up for dead).
func (s *Service) Claim(ctx context.Context, name string, quiet time.Duration) (*StreamClaim, error) {
	unlock := s.streamLocks.lock(name)
	defer unlock()
	reg := s.cfg.Cluster
	octx, cancel := s.op(ctx)
	defer cancel()
	l, err := reg.Acquire(octx, streamKind, streamResource(name), func(cur cluster.Lease, holder cluster.Node, alive bool) bool {
		if !alive {
			return true
		}
		// A lease younger than quiet counts as activity: the holder's next heartbeat may
		// not list its new publisher yet.
		active := holder.Active(name)
		if cur.At.After(active) {
			active = cur.At
		}
		return s.now().Sub(active) >= quiet
	})
	var held *cluster.HeldError
	if errors.As(err, &held) {
		return nil, fmt.Errorf("%w: node %s holds the stream", ErrStreamBusy, held.Lease.Node)
	}
	if err != nil {
		return nil, dbError("claim stream "+name, err)
	}
	lost, stop := reg.Watch(l)
	c := &StreamClaim{s: s, name: name, lease: l, lost: lost, stop: stop}
	s.claimsMu.Lock()
	s.claims[name] = c
	s.claimsMu.Unlock()
	return c, nil
}

// StreamClaim is this node's hold on a stream.
type StreamClaim struct {
	s     *Service
	name  string
	lease cluster.Lease
	lost  <-chan struct{}
	stop  func()
}

// Lost is closed when another node took the stream over.
func (c *StreamClaim) Lost() <-chan struct{} { return c.lost }

// Release gives the stream up, once its last publisher on this node has ended.
func (c *StreamClaim) Release() {
	unlock := c.s.streamLocks.lock(c.name)
	defer unlock()
	c.stop()
	c.s.claimsMu.Lock()
	if c.s.claims[c.name] == c {
		delete(c.s.claims, c.name)
	}
	c.s.claimsMu.Unlock()
	ctx, cancel := c.s.op(context.Background())
	defer cancel()
	if err := c.s.cfg.Cluster.Release(ctx, c.lease); err != nil && !errors.Is(err, cluster.ErrLost) {
		// Other nodes may still take the stream once its publisher here reports quiet.
		c.s.log.Warn("stream lease not released", "stream", c.name, "err", err)
	}
}

// claimed reports whether this node holds a claim on the stream.
func (s *Service) claimed(name string) bool {
	s.claimsMu.Lock()
	defer s.claimsMu.Unlock()
	return s.claims[name] != nil
}

// heldElsewhere reports whether another node holds the stream now: then the room is that
// node's to set offline, and its end is that node's to announce.
func (s *Service) heldElsewhere(ctx context.Context, name string) (bool, error) {
	octx, cancel := s.op(ctx)
	defer cancel()
	l, ok, err := s.cfg.Cluster.Current(octx, streamResource(name))
	if err != nil {
		return false, dbError("read stream lease "+name, err)
	}
	return ok && !l.Released() && l.Node != s.node(), nil
}

// node is this node's id.
func (s *Service) node() string { return s.cfg.Cluster.ID() }
