package rooms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// ExternalLogin is who an external identity provider (OpenID Connect) says signed in.
type ExternalLogin struct {
	Issuer  string
	Subject string
	// Email, when EmailVerified, links the sign-in to the local account with that email
	// the first time, and is the new account's email otherwise.
	Email         string
	EmailVerified bool
	// PreferredHandle seeds a new account's handle (e.g. preferred_username).
	PreferredHandle string
}

// identityDoc ties an external identity to an account. Its _id is the identity, so one
// identity can never belong to two accounts, even when its first sign-ins race.
type identityDoc struct {
	ID      string        `bson:"_id"` // issuer + " " + subject
	UserID  bson.ObjectID `bson:"user_id"`
	Created time.Time     `bson:"created"`
}

// LogInExternal signs in the account of an external identity, first linking it to the
// local account with the same verified email or creating an account (which has no
// password: it signs in through the provider only). The first account ever is the admin,
// however it was made.
func (s *Service) LogInExternal(ctx context.Context, in ExternalLogin) (Login, error) {
	if in.Issuer == "" || in.Subject == "" {
		return Login{}, &ValidationError{Field: "subject", Message: "the identity provider named no subject"}
	}
	id := in.Issuer + " " + in.Subject
	for range 3 {
		var ident identityDoc
		octx, cancel := s.op(ctx)
		err := s.identities.FindOne(octx, bson.D{{Key: "_id", Value: id}}).Decode(&ident)
		cancel()
		switch {
		case err == nil:
			var d userDoc
			octx, cancel := s.op(ctx)
			err := s.users.FindOne(octx, bson.D{{Key: "_id", Value: ident.UserID}}).Decode(&d)
			cancel()
			if errors.Is(err, mongo.ErrNoDocuments) {
				// The account was deleted: the identity starts afresh.
				if err := s.forgetIdentity(ctx, id); err != nil {
					return Login{}, err
				}
				continue
			}
			if err != nil {
				return Login{}, dbError("external login: find account", err)
			}
			s.log.Info("logged in through identity provider", "user_id", d.ID.Hex(), "issuer", in.Issuer)
			return s.startSession(ctx, &d)
		case !errors.Is(err, mongo.ErrNoDocuments):
			return Login{}, dbError("external login: find identity", err)
		}
		d, err := s.accountFor(ctx, in)
		if err != nil {
			return Login{}, err
		}
		octx, cancel = s.op(ctx)
		_, err = s.identities.InsertOne(octx, identityDoc{ID: id, UserID: d.ID, Created: s.now()})
		cancel()
		if isDup(err) {
			continue // a concurrent first sign-in linked it: use that
		}
		if err != nil {
			return Login{}, dbError("external login: link identity", err)
		}
		s.log.Info("identity linked", "user_id", d.ID.Hex(), "issuer", in.Issuer)
		return s.startSession(ctx, d)
	}
	return Login{}, dbError("external login", errors.New("the identity kept changing"))
}

func (s *Service) forgetIdentity(ctx context.Context, id string) error {
	octx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.identities.DeleteOne(octx, bson.D{{Key: "_id", Value: id}})
	return dbError("external login: forget identity", err)
}

// accountFor finds the account a new external identity belongs to, or creates it.
func (s *Service) accountFor(ctx context.Context, in ExternalLogin) (*userDoc, error) {
	email := normalizeEmail(in.Email)
	if !in.EmailVerified || validateEmail(email) != nil {
		// The provider does not vouch for an address: the account gets one of this
		// identity's own, which can never be delivered (RFC 2606 .invalid) nor match a
		// real one.
		sum := sha256.Sum256([]byte(in.Issuer + " " + in.Subject))
		email = "oidc-" + hex.EncodeToString(sum[:6]) + "@" + issuerHost(in.Issuer) + ".invalid"
	}
	// An account with the email is the identity's: a local account with the verified
	// address, or one made for this identity by a sign-in that failed before linking it.
	var found userDoc
	octx, cancel := s.op(ctx)
	err := s.users.FindOne(octx, bson.D{{Key: "email", Value: email}}).Decode(&found)
	cancel()
	if err == nil {
		return &found, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, dbError("external login: find account by email", err)
	}
	base := handleFrom(in.PreferredHandle, in.Email)
	for attempt := range 5 {
		handle := base
		if attempt > 0 {
			suffix := strings.Map(keepHandleRune, "_"+strings.ToLower(randomToken(4)[:4]))
			handle = base[:min(len(base), 24-len(suffix))] + suffix
		}
		d := userDoc{ID: bson.NewObjectID(), Email: email, Handle: handle, Created: s.now()}
		err := s.insertAccount(ctx, &d)
		if err == nil {
			return &d, nil
		}
		if !isDup(err) {
			return nil, err
		}
		if terr := s.checkTaken(ctx, email, handle); terr != nil {
			var ce *ConflictError
			if errors.As(terr, &ce) && ce.Field == "handle" {
				continue // another handle
			}
			return nil, terr
		}
	}
	return nil, &ConflictError{Field: "handle", Message: "no free handle could be made from the provider's user name"}
}

// handleFrom makes a valid handle from the provider's user name or the email's local part.
func handleFrom(preferred, email string) string {
	for _, c := range []string{preferred, strings.SplitN(email, "@", 2)[0]} {
		h := strings.Map(keepHandleRune, strings.ToLower(strings.TrimSpace(c)))
		if len(h) > 24 {
			h = h[:24]
		}
		if len(h) >= 3 {
			return h
		}
	}
	return strings.Map(keepHandleRune, "user_"+strings.ToLower(randomToken(6)[:6]))
}

// keepHandleRune maps a rune to what handles allow ([a-z0-9_]), or drops it.
func keepHandleRune(r rune) rune {
	switch {
	case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
		return r
	case r == '.', r == '-', r == ' ':
		return '_'
	}
	return -1
}

func issuerHost(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Hostname() == "" {
		return "oidc"
	}
	return strings.ReplaceAll(u.Hostname(), ":", "-")
}
