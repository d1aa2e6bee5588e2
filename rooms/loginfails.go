package rooms

import (
	"context"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Failed logins are stored in MongoDB's login_failures, so that the limits hold across
// nodes behind a load balancer: an attacker spreading attempts over N nodes would
// otherwise get N times the allowance, and a success on one node clears an account's
// failures on all. Each failure is an insert, never an update of a shared document (see
// doc.go, The embedded database); the janitor deletes old ones. Each node also counts
// failures per address in memory (failureWindow), which refuses a flood from one address
// before it costs a query.

type loginFailureDoc struct {
	ID bson.ObjectID `bson:"_id"`
	// Key is what the failure counts against: "ip:<address or /64>",
	// "acct:<user:id or name:login>" (from everywhere), that followed by "|ip:..." (from
	// one address), or "signup:<address>" (sign-ups, which count as attempts too).
	Key string `bson:"key"`
	// Acct is the account's key for its failures, so that a success clears them all.
	Acct string    `bson:"acct,omitempty"`
	At   time.Time `bson:"at"`
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

// storeFailure records a failed login of acct (the account's key, "" for none) against
// keys, for every node to see. A failure that cannot be stored is still counted by this node.
func (s *Service) storeFailure(ctx context.Context, now time.Time, acct string, keys ...string) {
	var docs []any
	for _, k := range keys {
		if k == "" {
			continue
		}
		d := loginFailureDoc{ID: bson.NewObjectID(), Key: k, At: now}
		if strings.HasPrefix(k, acct) { // the account's own keys, not the address's
			d.Acct = acct
		}
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	if _, err := s.loginFails.InsertMany(octx, docs); err != nil {
		s.log.Warn("failed login not stored for other nodes", "err", err)
	}
}

// forgetFailures drops an account's stored failures, from every address (after a
// successful login).
func (s *Service) forgetFailures(ctx context.Context, acct string) {
	octx, cancel := s.op(ctx)
	defer cancel()
	if _, err := s.loginFails.DeleteMany(octx, bson.D{{Key: "acct", Value: acct}}); err != nil {
		s.log.Warn("stored failed logins not cleared", "err", err)
	}
}

// deleteOldFailures is the janitor's: failures older than both windows count no more.
func (s *Service) deleteOldFailures(ctx context.Context, now time.Time) error {
	octx, cancel := s.op(ctx)
	defer cancel()
	cut := now.Add(-max(s.cfg.AccountLimit.Window, s.cfg.AccountTotalLimit.Window, s.cfg.IPLimit.Window, s.cfg.SignUpLimit.Window))
	_, err := s.loginFails.DeleteMany(octx, bson.D{{Key: "at", Value: bson.D{{Key: "$lte", Value: cut}}}})
	return dbError("delete old failed logins", err)
}
