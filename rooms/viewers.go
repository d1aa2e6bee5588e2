package rooms

import (
	"sync"
	"time"
)

// A live room's viewers are counted by every node its viewers reach (the one with the
// stream and those fetching it from there) and reported in each node's heartbeat. The node
// that owns the live broadcast sums the alive nodes' reports: that sum is the room's count
// (its document's viewers) and what the broadcast's peak and total follow.

// viewerCounts keeps the cluster's last summed counts briefly, so that the broadcasts
// live on this node share one read of the node reports per interval.
type viewerCounts struct {
	mu     sync.Mutex
	at     time.Time
	counts map[string]int // by stream name
}

// clusterViewers is how many viewers watch the stream over the alive nodes, from their
// last reports.
func (s *Service) clusterViewers(name string) (int, error) {
	c := &s.viewerCounts
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.now()
	if age := now.Sub(c.at); c.counts == nil || age < 0 || age >= s.cfg.ViewersInterval/2 {
		ctx, cancel := s.op(s.bg)
		counts, err := s.cfg.Cluster.ViewerCounts(ctx)
		cancel()
		if err != nil {
			return 0, dbError("read the nodes' viewer counts", err)
		}
		c.counts, c.at = counts, now
	}
	return c.counts[name], nil
}
