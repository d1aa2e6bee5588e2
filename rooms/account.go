package rooms

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/rooms/audit"
)

// What account holders do to their own account: change the password, sign out
// everywhere, delete the account with everything it owns.

// accountDoc reads actor's own document (with its password hash).
func (s *Service) accountDoc(ctx context.Context, actor User) (userDoc, error) {
	var d userDoc
	uid, err := bson.ObjectIDFromHex(actor.ID)
	if err != nil {
		return d, fmt.Errorf("account: %w", ErrUnauthorized)
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	err = s.users.FindOne(octx, bson.D{{Key: "_id", Value: uid}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, fmt.Errorf("account %s: %w", actor.ID, ErrUnauthorized)
	}
	if err != nil {
		return d, dbError("read account", err)
	}
	return d, nil
}

// checkOwnPassword confirms that the signed-in holder of an account knows its password,
// before an action a stolen session must not be able to take alone. Wrong guesses count
// against the account like failed logins (AccountLimit). An account without a password
// (made by an external sign-in) has nothing to confirm.
func (s *Service) checkOwnPassword(ctx context.Context, d *userDoc, password, ip string) error {
	if d.Password == "" {
		return nil
	}
	now := s.now()
	key := "confirm:user:" + d.ID.Hex()
	if wait, err := s.sharedWait(ctx, key, s.cfg.AccountLimit, now); err != nil {
		return err
	} else if wait > 0 {
		return &RateLimitError{Scope: "account", RetryAfter: wait}
	}
	ok, err := s.verify(ctx, d.Password, password)
	if err != nil {
		return err
	}
	if !ok {
		s.storeFailure(ctx, now, key, key)
		s.log.Info("password confirmation failed", "user_id", d.ID.Hex(), "ip", ipKey(ip))
		return invalid("password", "is not this account's password")
	}
	return nil
}

// PasswordChange is the input of ChangePassword.
type PasswordChange struct {
	// Current is the password now ("" for an account that has none yet).
	Current, New string
	// KeepSession is the token of the session making the change: it stays signed in, every
	// other session of the account ends.
	KeepSession string
	IP          string
}

// ChangePassword sets actor's password, after checking the current one, and ends the
// account's other sessions. Errors: *ValidationError (current: wrong; new: too short or
// long), *RateLimitError, ErrUnauthorized, ErrUnavailable.
func (s *Service) ChangePassword(ctx context.Context, actor User, in PasswordChange) error {
	if err := validatePassword(in.New); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			ve.Field = "new_password"
		}
		return err
	}
	d, err := s.accountDoc(ctx, actor)
	if err != nil {
		return err
	}
	if err := s.checkOwnPassword(ctx, &d, in.Current, in.IP); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			ve.Field = "current_password"
		}
		return err
	}
	hash, err := s.hash(ctx, in.New)
	if err != nil {
		return err
	}
	if _, err := s.updateUser(ctx, d.ID, bson.D{{Key: "$set", Value: bson.D{{Key: "password", Value: hash}}}}, "change password"); err != nil {
		return err
	}
	filter := bson.D{{Key: "user_id", Value: d.ID}}
	if wellFormedToken(in.KeepSession) {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$ne", Value: tokenHash(in.KeepSession)}}})
	}
	octx, cancel := s.op(ctx)
	res, err := s.sessions.DeleteMany(octx, filter)
	cancel()
	ended := int64(0)
	if err != nil {
		// The password is changed; the other sessions last until they expire or are revoked.
		s.log.Warn("other sessions not ended after a password change", "user_id", actor.ID, "err", err)
	} else {
		ended = res.DeletedCount
	}
	s.log.Info("password changed", "user_id", actor.ID, "sessions_ended", ended)
	s.record(ctx, actor, audit.PasswordChange, nil, userTarget(UserRef{ID: actor.ID, Handle: actor.Handle}),
		map[string]any{"sessions": ended})
	return nil
}

// RevokeSessions signs actor out everywhere: every session of the account ends, this one
// included. API tokens are not sessions: they are revoked one by one.
func (s *Service) RevokeSessions(ctx context.Context, actor User) (int64, error) {
	uid, err := bson.ObjectIDFromHex(actor.ID)
	if err != nil {
		return 0, fmt.Errorf("sign out everywhere: %w", ErrUnauthorized)
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.sessions.DeleteMany(octx, bson.D{{Key: "user_id", Value: uid}})
	if err != nil {
		return 0, dbError("sign out everywhere", err)
	}
	s.log.Info("signed out everywhere", "user_id", actor.ID, "sessions", res.DeletedCount)
	s.record(ctx, actor, audit.SessionsRevoke, nil, userTarget(UserRef{ID: actor.ID, Handle: actor.Handle}),
		map[string]any{"sessions": res.DeletedCount})
	return res.DeletedCount, nil
}

// AccountDeletion is the input of DeleteAccount: the account holder confirms by typing
// their handle and, when the account has one, its password.
type AccountDeletion struct {
	Handle, Password string
	IP               string
}

// DeleteAccount deletes actor's account and everything it owns: its rooms (what is live in
// them is stopped first), with their broadcasts, recordings and webhooks (DeleteRoom), its
// sessions, API tokens, remembered browsers and linked sign-ins. The only admin left
// cannot delete their account. Errors: *ValidationError (handle or password do not
// confirm), *ConflictError (the last admin), *RateLimitError, ErrUnavailable.
func (s *Service) DeleteAccount(ctx context.Context, actor User, in AccountDeletion) error {
	d, err := s.accountDoc(ctx, actor)
	if err != nil {
		return err
	}
	if strings.TrimPrefix(normalizeHandle(in.Handle), "@") != d.Handle {
		return invalid("handle", "type your handle, %s, to confirm", d.Handle)
	}
	if err := s.checkOwnPassword(ctx, &d, in.Password, in.IP); err != nil {
		return err
	}
	if d.Admin {
		octx, cancel := s.op(ctx)
		n, err := s.users.CountDocuments(octx, bson.D{{Key: "admin", Value: true}, {Key: "disabled", Value: bson.D{{Key: "$ne", Value: true}}},
			{Key: "_id", Value: bson.D{{Key: "$ne", Value: d.ID}}}})
		cancel()
		if err != nil {
			return dbError("count admins", err)
		}
		if n == 0 {
			return &ConflictError{Field: "account", Message: "you are the only admin: make another account admin first"}
		}
	}
	// Disabled first: from here on the account signs in nowhere and publishes nothing,
	// on every node, while its rooms go.
	if _, err := s.updateUser(ctx, d.ID, bson.D{{Key: "$set", Value: bson.D{{Key: "disabled", Value: true}}}}, "delete account"); err != nil {
		return err
	}
	// Until the account is gone, a failure gives it back to its holder, who can try again.
	done := false
	defer func() {
		if done {
			return
		}
		if _, err := s.updateUser(context.WithoutCancel(ctx), d.ID, bson.D{{Key: "$set", Value: bson.D{{Key: "disabled", Value: false}}}},
			"undo account deletion"); err != nil {
			s.log.Error("account left disabled by a failed deletion", "user_id", actor.ID, "err", err)
		}
	}()
	s.endAccess(ctx, d.ID)
	owned, err := s.ownedRooms(ctx, d.ID)
	if err != nil {
		return err
	}
	for _, r := range owned {
		if err := s.DeleteRoom(ctx, actor, r.Slug); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("delete account: room %s: %w", r.Slug, err)
		}
	}
	if err := s.deleteMadeClips(ctx, d.ID.Hex()); err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	for _, c := range []struct {
		coll   *mongo.Collection
		filter bson.D
	}{
		{s.sessions, bson.D{{Key: "user_id", Value: d.ID}}},
		{s.tokens, bson.D{{Key: "user_id", Value: d.ID}}},
		{s.devices, bson.D{{Key: "user_id", Value: d.ID}}},
		{s.identities, bson.D{{Key: "user_id", Value: d.ID}}},
	} {
		octx, cancel := s.op(ctx)
		_, err := c.coll.DeleteMany(octx, c.filter)
		cancel()
		if err != nil {
			return dbError("delete account: "+c.coll.Name(), err)
		}
	}
	unlock := s.locks.lock("user:" + d.ID.Hex())
	octx, cancel := s.op(ctx)
	_, err = s.users.DeleteOne(octx, bson.D{{Key: "_id", Value: d.ID}})
	cancel()
	unlock()
	if err != nil {
		return dbError("delete account", err)
	}
	done = true
	s.log.Info("account deleted", "user_id", actor.ID, "rooms", len(owned))
	s.record(ctx, actor, audit.UserDelete, nil, userTarget(UserRef{ID: actor.ID, Handle: actor.Handle}),
		map[string]any{"rooms": len(owned)})
	return nil
}
