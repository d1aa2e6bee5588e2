package main

import (
	"context"
	"sync"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/rooms/cluster"
)

// newCluster builds this node's registry: the one node id and heartbeat that rooms,
// chat, webhooks and the recorder share.
func (a *app) newCluster(db *mongo.Database) error {
	var err error
	a.cluster, err = cluster.New(cluster.Config{
		DB: db, NodeID: a.nodeID, AdvertiseURL: a.cfg.Node.AdvertiseURL, Logger: a.log, Report: a.clusterReport,
	})
	return err
}

// clusterReport is what this node tells the others at each heartbeat: when each of its
// publishers last sent data (another node takes a stream over only from a quiet one), how
// many viewers watch each stream through this node (viewers.go) and what its recordings
// hold on its disk (for the admin console's server health), and the publishes it refused
// lately, which every node's dashboard shows (web/dashboard.go).
func (a *app) clusterReport() cluster.Report {
	r := cluster.Report{Viewers: a.viewerReport()}
	if a.recorder != nil {
		b := a.recorder.Backlog()
		r.Backlog = cluster.Backlog{Recordings: b.Recordings, BytesPending: b.BytesPending, PartsPending: b.PartsPending}
	}
	for _, f := range a.hub.Refusals(cluster.MaxRefusals) {
		r.Refusals = append(r.Refusals, cluster.Refusal{Name: f.Name, At: f.At, Reason: f.Reason})
	}
	for name, at := range a.hub.Activity() {
		r.Publishing = append(r.Publishing, cluster.Activity{Name: name, Active: at})
	}
	return r
}

// startCluster runs the heartbeat on a context of its own, so that this node stays alive
// for the others while it finishes its recordings at shutdown. The returned stop ends it,
// once the other parts have stopped.
func (a *app) startCluster(ctx context.Context) (stop func()) {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.cluster.Run(cctx) })
	return func() {
		cancel()
		wg.Wait()
	}
}
