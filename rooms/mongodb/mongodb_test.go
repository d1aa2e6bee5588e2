package mongodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/scripts/testenv"
)

// What the stores rely on, checked against the embedded server: creating indexes again
// is harmless, both kinds of duplicate key are recognised, Distinct works under a time
// limit, and a server that is gone is unavailable, not a refusal.
func TestOnTheEmbeddedServer(t *testing.T) {
	m := testenv.StartMongoDB(t)
	c := m.Database(t, "mongodb").Collection("things")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	indexes := []Index{
		{Name: "name_unique", Keys: Keys("name", 1), Unique: true},
		{Name: "kind_at", Keys: Keys("kind", 1, "at", -1)},
	}
	for i := range 2 {
		if err := CreateIndexes(ctx, c, indexes...); err != nil {
			t.Fatalf("CreateIndexes, time %d: %v", i+1, err)
		}
	}

	for i, kind := range []string{"a", "b", "a", "c"} {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "name", Value: fmt.Sprint("n", i)}, {Key: "kind", Value: kind}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.InsertOne(ctx, bson.D{{Key: "name", Value: "n0"}})
	if !IsDup(err) || Unavailable(err) {
		t.Fatalf("duplicate insert: %v (IsDup %v)", err, IsDup(err))
	}
	_, err = c.UpdateOne(ctx, bson.D{{Key: "name", Value: "n1"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "n2"}}}})
	if !IsDup(err) {
		t.Fatalf("duplicate by an update: %v, not recognised", err)
	}

	kinds, err := Distinct(ctx, c, "kind", bson.D{}, 100)
	if err != nil || !slices.Equal(kinds, []string{"a", "b", "c"}) {
		t.Fatalf("Distinct = %v, %v", kinds, err)
	}
	if kinds, err := Distinct(ctx, c, "kind", bson.D{{Key: "kind", Value: "b"}}, 100); err != nil || !slices.Equal(kinds, []string{"b"}) {
		t.Fatalf("Distinct with a filter = %v, %v", kinds, err)
	}

	sentinel := errors.New("store unavailable")
	if err := Wrap("insert", nil, sentinel); err != nil {
		t.Fatalf("Wrap(nil) = %v", err)
	}
	m.Kill()
	octx, ocancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer ocancel()
	_, err = c.InsertOne(octx, bson.D{{Key: "name", Value: "later"}})
	if !Unavailable(err) {
		t.Fatalf("insert with the server gone: %v, not unavailable", err)
	}
	if w := Wrap("insert", err, sentinel); !errors.Is(w, sentinel) || !Unavailable(w) || !strings.HasPrefix(w.Error(), "insert: ") {
		t.Fatalf("Wrap = %v", w)
	}
	if Unavailable(context.Canceled) {
		t.Fatal("a caller's cancellation counts as unavailability")
	}
}
