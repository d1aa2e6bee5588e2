package rooms

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ErrNotLiveElsewhere: the room is not live on another reachable node.
var ErrNotLiveElsewhere = errors.New("room is not live on another node")

// Origin is the base URL of the node a room's stream (name: a public room's slug or a
// playback id) is live on, when that is another node that is alive and reachable (this
// node can fetch the stream's HLS from there), and the room's id.
func (s *Service) Origin(ctx context.Context, name string) (url, roomID string, err error) {
	k, err := s.Playback(ctx)
	if err != nil {
		return "", "", err
	}
	filter := bson.D{{Key: "slug", Value: name}}
	if oid, ok := k.roomOID(name); ok {
		filter = bson.D{{Key: "_id", Value: oid}}
	}
	var room roomDoc
	octx, cancel := s.op(ctx)
	defer cancel()
	err = s.rooms.FindOne(octx, filter, options.FindOne().SetProjection(bson.D{{Key: "slug", Value: 1},
		{Key: "visibility", Value: 1}, {Key: "live", Value: 1}, {Key: "live_node", Value: 1}})).Decode(&room)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", "", fmt.Errorf("room %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return "", "", dbError("find room "+name, err)
	}
	// The room's live stream is the one under its current name only.
	if s.room(&room).StreamName() != name || !room.Live || room.LiveNode == "" || room.LiveNode == s.node() {
		return "", "", ErrNotLiveElsewhere
	}
	node, alive, _, err := s.cfg.Cluster.Node(octx, room.LiveNode)
	if err != nil {
		return "", "", dbError("find node "+room.LiveNode, err)
	}
	if !alive || node.URL == "" {
		return "", "", ErrNotLiveElsewhere
	}
	return node.URL, room.ID.Hex(), nil
}
