package mongodb

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Keys builds an index's keys from field, order pairs: Keys("room_id", 1, "at", -1).
func Keys(pairs ...any) bson.D {
	out := make(bson.D, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, bson.E{Key: pairs[i].(string), Value: pairs[i+1]})
	}
	return out
}

// Index is one index of a collection: a name (which makes creating it idempotent), its
// keys and whether they are unique.
type Index struct {
	Name   string
	Keys   bson.D
	Unique bool
}

// CreateIndexes creates c's indexes that are missing. One createIndexes per index: the
// embedded server drops the connection when one command names several that all exist.
func CreateIndexes(ctx context.Context, c *mongo.Collection, indexes ...Index) error {
	for _, ix := range indexes {
		o := options.Index().SetName(ix.Name)
		if ix.Unique {
			o.SetUnique(true)
		}
		if _, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.Keys, Options: o}); err != nil {
			return fmt.Errorf("create index %s.%s: %w", c.Name(), ix.Name, err)
		}
	}
	return nil
}
