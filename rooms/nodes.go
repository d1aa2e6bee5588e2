package rooms

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Nodes are the onair processes sharing the database. Each one keeps its own document in
// the nodes collection ({_id: node id, url, heartbeat}), the only writer of it; rooms say
// which node they are live on (live_node), so any node can find where a room's HLS is.

// nodeHeartbeat records this node as alive, with the URL other nodes reach it at.
func (s *Service) nodeHeartbeat(ctx context.Context) {
	octx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.nodes.UpdateOne(octx, bson.D{{Key: "_id", Value: s.cfg.NodeID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "url", Value: s.cfg.AdvertiseURL}, {Key: "heartbeat", Value: s.now()}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		s.log.Debug("node heartbeat", "err", dbError("node heartbeat", err))
	}
}

// ErrNotLiveElsewhere: the room is not live on another reachable node.
var ErrNotLiveElsewhere = errors.New("room is not live on another node")

// OriginURL is the base URL of the node a room is live on, when that is another node
// that is alive and reachable: this node can fetch the room's HLS from there.
func (s *Service) OriginURL(ctx context.Context, slug string) (string, error) {
	var room roomDoc
	octx, cancel := s.op(ctx)
	defer cancel()
	err := s.rooms.FindOne(octx, bson.D{{Key: "slug", Value: slug}},
		options.FindOne().SetProjection(bson.D{{Key: "live", Value: 1}, {Key: "live_node", Value: 1}})).Decode(&room)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", fmt.Errorf("room %s: %w", slug, ErrNotFound)
	}
	if err != nil {
		return "", dbError("find room "+slug, err)
	}
	if !room.Live || room.LiveNode == "" || room.LiveNode == s.cfg.NodeID {
		return "", ErrNotLiveElsewhere
	}
	var node struct {
		URL string `bson:"url"`
	}
	err = s.nodes.FindOne(octx, bson.D{
		{Key: "_id", Value: room.LiveNode},
		{Key: "heartbeat", Value: bson.D{{Key: "$gte", Value: s.now().Add(-s.cfg.StaleAfter)}}},
	}).Decode(&node)
	if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && node.URL == "") {
		return "", ErrNotLiveElsewhere
	}
	if err != nil {
		return "", dbError("find node "+room.LiveNode, err)
	}
	return node.URL, nil
}
