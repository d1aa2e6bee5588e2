package mongodb

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Distinct returns the distinct string values of field among the first limit documents
// that filter matches, in the order first seen. It reads them with a find and a
// projection: the embedded server refuses the distinct command under a time limit,
// which every operation of the stores has.
func Distinct(ctx context.Context, c *mongo.Collection, field string, filter any, limit int64) ([]string, error) {
	cur, err := c.Find(ctx, filter, options.Find().
		SetProjection(bson.D{{Key: field, Value: 1}, {Key: "_id", Value: 0}}).SetLimit(limit))
	if err != nil {
		return nil, err
	}
	var docs []bson.Raw
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, d := range docs {
		v, ok := d.Lookup(field).StringValueOK()
		if ok && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, nil
}
