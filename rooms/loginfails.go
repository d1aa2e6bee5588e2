package rooms

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Failed logins are stored in MongoDB's login_failures, so that the limits hold across
// nodes behind a load balancer: an attacker spreading attempts over N nodes would
// otherwise get N times the allowance, and a success on one node clears an account's
// failures on all. Each failure is an insert (no document is ever updated, which FerretDB
// could lose under concurrency); the janitor deletes old ones. Each node also counts
// failures per address in memory (failureWindow), which refuses a flood from one address
// before it costs a query.

type loginFailureDoc struct {
	ID  bson.ObjectID `bson:"_id"`
	Key string        `bson:"key"` // "ip:<address or /64>" or "acct:<user:id or name:login>"
	At  time.Time     `bson:"at"`
}

// sharedWait is how long until key may try again, by the failures every node stored
// within l's window; 0 means now.
func (s *Service) sharedWait(ctx context.Context, key string, l RateLimit, now time.Time) (time.Duration, error) {
	if l.Failures < 0 || key == "" {
		return 0, nil
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	cur, err := s.loginFails.Find(octx,
		bson.D{{Key: "key", Value: key}, {Key: "at", Value: bson.D{{Key: "$gt", Value: now.Add(-l.Window)}}}},
		options.Find().SetSort(bson.D{{Key: "at", Value: -1}}).SetLimit(int64(l.Failures)))
	if err != nil {
		return 0, dbError("read failed logins", err)
	}
	var docs []loginFailureDoc
	if err := cur.All(octx, &docs); err != nil {
		return 0, dbError("read failed logins", err)
	}
	if len(docs) < l.Failures {
		return 0, nil
	}
	// The oldest of the newest Failures has to leave the window first.
	return max(docs[len(docs)-1].At.Add(l.Window).Sub(now), time.Second), nil
}

// storeFailure records a failed login against its keys, for every node to see. A failure
// that cannot be stored is still counted by this node.
func (s *Service) storeFailure(ctx context.Context, now time.Time, keys ...string) {
	var docs []any
	for _, k := range keys {
		if k != "" {
			docs = append(docs, loginFailureDoc{ID: bson.NewObjectID(), Key: k, At: now})
		}
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	if _, err := s.loginFails.InsertMany(octx, docs); err != nil {
		s.log.Warn("failed login not stored for other nodes", "err", err)
	}
}

// forgetFailures drops key's stored failures (an account after a successful login).
func (s *Service) forgetFailures(ctx context.Context, key string) {
	octx, cancel := s.op(ctx)
	defer cancel()
	if _, err := s.loginFails.DeleteMany(octx, bson.D{{Key: "key", Value: key}}); err != nil {
		s.log.Warn("stored failed logins not cleared", "err", err)
	}
}

// deleteOldFailures is the janitor's: failures older than both windows count no more.
func (s *Service) deleteOldFailures(ctx context.Context, now time.Time) error {
	octx, cancel := s.op(ctx)
	defer cancel()
	cut := now.Add(-max(s.cfg.AccountLimit.Window, s.cfg.IPLimit.Window))
	_, err := s.loginFails.DeleteMany(octx, bson.D{{Key: "at", Value: bson.D{{Key: "$lte", Value: cut}}}})
	return dbError("delete old failed logins", err)
}
