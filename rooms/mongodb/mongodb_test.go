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
	"go.mongodb.org/mongo-driver/v2/mongo"

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

// poolCleared is what the driver returns to an operation waiting for a connection when
// another operation found the server gone and the pool was cleared: an error of its own
// (unexported), known by its Retryable method (driver.RetryablePoolError).
type poolCleared struct{}

func (poolCleared) Error() string {
	return "connection pool for 127.0.0.1:1 was cleared because another operation failed with: EOF"
}
func (poolCleared) Retryable() bool { return true }

func TestUnavailableKinds(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"deadline", context.DeadlineExceeded, true},
		{"caller's cancellation", context.Canceled, false},
		{"pool cleared", poolCleared{}, true},
		{"pool cleared, wrapped", fmt.Errorf("find stream key: %w", poolCleared{}), true},
		{"client disconnected", mongo.ErrClientDisconnected, true},
		{"a refusal", errors.New("bad value"), false},
		{"duplicate key", mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000}}}, false},
	}
	for _, tt := range tests {
		if got := Unavailable(tt.err); got != tt.want {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
