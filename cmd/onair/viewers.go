package main

import (
	"context"
	"time"

	"onair/rooms/cluster"
)

// Viewers are counted once, on the node they reach: web counts each stream's HLS viewers,
// whether this node has the stream or fetches it from the node that does (which does not
// count those fetches). Each node reports its counts in its heartbeat (viewerReport); the
// cluster-wide count of a stream is the sum over the alive nodes (cluster.ViewerCounts),
// read by rooms on the node with the live broadcast (room count, peak, total) and by
// pumpViewers on every node for its chat sockets. Metrics show this node's own counts.

// viewerPumpInterval is how often chat's counts follow the nodes' reports, written every
// heartbeat (2 s).
const viewerPumpInterval = 2 * time.Second

// viewerReport is the viewers watching each stream through this node, for its heartbeat.
func (a *app) viewerReport() []cluster.Viewers {
	var out []cluster.Viewers
	for name, n := range a.web.Viewers() {
		out = append(out, cluster.Viewers{Name: name, N: n})
	}
	return out
}

// pumpViewers gives chat the cluster-wide viewer counts, so that every room's sockets on
// this node see how many watch it anywhere, until ctx ends.
func (a *app) pumpViewers(ctx context.Context) error {
	tick := time.NewTicker(viewerPumpInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			octx, cancel := context.WithTimeout(ctx, viewerPumpInterval)
			counts, err := a.cluster.ViewerCounts(octx)
			cancel()
			if err != nil {
				// Chat keeps the last counts until MongoDB answers again.
				a.log.Debug("viewer counts not read", "err", err)
				continue
			}
			a.chat.SetViewerCounts(counts)
		}
	}
}
