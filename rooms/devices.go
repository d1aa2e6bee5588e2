package rooms

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A device is a browser that signed in to an account with its password: it keeps a token
// (web sets it as a long-lived httpOnly cookie), stored here as a hash. Logins from a
// device of the account skip AccountTotalLimit, so that guessing spread over many
// addresses cannot lock the account's owner out.
//
//	devices  {_id: hex SHA-256 of the token, user_id, created}

type deviceDoc struct {
	ID      string        `bson:"_id"`
	UserID  bson.ObjectID `bson:"user_id"`
	Created time.Time     `bson:"created"`
}

// knownDevice reports whether token is a device of the account.
func (s *Service) knownDevice(ctx context.Context, token string, user bson.ObjectID) (bool, error) {
	if token == "" || len(token) > 128 {
		return false, nil
	}
	var d deviceDoc
	octx, cancel := s.op(ctx)
	defer cancel()
	err := s.devices.FindOne(octx, bson.D{{Key: "_id", Value: tokenHash(token)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, dbError("read device", err)
	}
	return d.UserID == user, nil
}

// newDevice stores a device of the account and returns its token; "" when it could not be
// stored (the login stands, the browser is simply not remembered).
func (s *Service) newDevice(ctx context.Context, user bson.ObjectID) string {
	token := randomToken(tokenBytes)
	octx, cancel := s.op(ctx)
	defer cancel()
	if _, err := s.devices.InsertOne(octx, deviceDoc{ID: tokenHash(token), UserID: user, Created: s.now()}); err != nil {
		s.log.Warn("device not remembered", "user_id", user.Hex(), "err", err)
		return ""
	}
	return token
}
