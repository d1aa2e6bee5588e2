package webhook

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/mongodb"
)

// Cluster adoption: the pending deliveries of a node that the registry counts as dead (a
// pod replaced under a new node id) are taken over by a live node, so that none waits
// forever for its writer to come back. Each is first claimed by a unique insert into
// webhook_claims, so that exactly one node adopts it, and only then is its node changed:
// a delivery document keeps a single writer throughout.

// adoptOrphans takes over the pending deliveries of nodes the registry counts as dead.
func (d *Dispatcher) adoptOrphans(ctx context.Context) (int, error) {
	octx, cancel := d.op(ctx)
	nodes, err := mongodb.Distinct(octx, d.deliveries, "node",
		bson.D{{Key: "status", Value: StatusPending}, {Key: "node", Value: bson.D{{Key: "$ne", Value: d.node()}}}}, 10000)
	cancel()
	if err != nil {
		return 0, dbError("list nodes with pending deliveries", err)
	}
	adopted := 0
	for _, node := range nodes {
		alive, err := d.alive(ctx, node)
		if err != nil {
			return adopted, err
		}
		if alive {
			continue
		}
		n, err := d.adopt(ctx, node)
		adopted += n
		if err != nil {
			return adopted, err
		}
	}
	return adopted, nil
}

func (d *Dispatcher) alive(ctx context.Context, node string) (bool, error) {
	octx, cancel := d.op(ctx)
	defer cancel()
	alive, err := d.cfg.Nodes.IsAlive(octx, node)
	if err != nil {
		return false, dbError("read node heartbeat", err)
	}
	return alive, nil
}

func (d *Dispatcher) adopt(ctx context.Context, dead string) (int, error) {
	octx, cancel := context.WithTimeout(ctx, 4*d.cfg.OpTimeout)
	cur, err := d.deliveries.Find(octx, bson.D{{Key: "node", Value: dead}, {Key: "status", Value: StatusPending}},
		options.Find().SetSort(bson.D{{Key: "queued", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(1000))
	var docs []deliveryDoc
	if err == nil {
		err = cur.All(octx, &docs)
	}
	cancel()
	if err != nil {
		return 0, dbError("find a dead node's deliveries", err)
	}
	n := 0
	for i := range docs {
		doc := &docs[i]
		octx, cancel := d.op(ctx)
		_, err := d.claims.InsertOne(octx, bson.D{
			{Key: "_id", Value: doc.ID.Hex() + "/" + dead}, {Key: "node", Value: d.node()}, {Key: "at", Value: d.now()},
		})
		if err == nil {
			var res *mongo.UpdateResult
			res, err = d.deliveries.UpdateOne(octx, bson.D{{Key: "_id", Value: doc.ID}, {Key: "node", Value: dead}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "node", Value: d.node()}}}})
			if err == nil && res.MatchedCount == 1 {
				doc.Node = d.node()
				d.enqueue(doc)
				n++
			}
		}
		cancel()
		if mongodb.IsDup(err) {
			continue // another node claimed it
		}
		if err != nil {
			return n, dbError("adopt a delivery", err)
		}
	}
	if n > 0 {
		d.log.Info("adopted a dead node's webhook deliveries", "dead_node", dead, "count", n)
	}
	return n, nil
}
