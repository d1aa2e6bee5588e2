package rooms

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/mongodb"
)

// User is an account as other packages see it: never its password hash.
type User struct {
	ID      string    `json:"id"`
	Email   string    `json:"email"`
	Handle  string    `json:"handle"`
	Admin   bool      `json:"admin"`
	Created time.Time `json:"created"`
	// Disabled accounts cannot sign in, their sessions and API tokens are refused and
	// their rooms' stream keys do not resolve (users.go).
	Disabled bool `json:"disabled,omitempty"`
}

// Session is a signed-in browser. Its token is not kept: only its SHA-256.
type Session struct {
	UserID  string    `json:"user_id"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// CSRFToken may be handed to the page's JavaScript, which sends it back in a header
	// on unsafe requests; check it with CheckCSRF.
	CSRFToken string `json:"csrf_token"`
}

// CheckCSRF reports, in constant time, whether token is the session's CSRF token.
func (s Session) CheckCSRF(token string) bool {
	return s.CSRFToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRFToken)) == 1
}

// Login is a new session: Token goes into an httpOnly, Secure, SameSite cookie and
// nowhere else (never into logs, URLs or JavaScript).
type Login struct {
	User    User
	Session Session
	Token   string
	// Device is the browser's device token to keep (see LogIn.Device), when a password
	// login or sign-up made a new one.
	Device string
}

// SignUp is the input of Service.SignUp.
type SignUp struct {
	Email    string
	Handle   string
	Password string
	// IP is the client's address, for SignUpLimit ("" skips it).
	IP string
}

// LogIn is the input of Service.LogIn.
type LogIn struct {
	// Login is the account's email or handle (case-insensitive).
	Login    string
	Password string
	// IP is the client's address, for the per-IP limit ("" skips that limit). IPv6
	// addresses count per /64.
	IP string
	// Device is the token of a browser that signed in to the account before (Login.Device),
	// if it has one: it exempts the login from AccountTotalLimit.
	Device string
}

type userDoc struct {
	ID       bson.ObjectID `bson:"_id"`
	Email    string        `bson:"email"`
	Handle   string        `bson:"handle"`
	Password string        `bson:"password"` // PHC string, argon2id
	Admin    bool          `bson:"admin"`
	Created  time.Time     `bson:"created"`
	Disabled bool          `bson:"disabled,omitempty"`
}

func (d *userDoc) user() User {
	return User{ID: d.ID.Hex(), Email: d.Email, Handle: d.Handle, Admin: d.Admin, Created: d.Created, Disabled: d.Disabled}
}

type sessionDoc struct {
	ID      string        `bson:"_id"` // hex SHA-256 of the token
	UserID  bson.ObjectID `bson:"user_id"`
	Created time.Time     `bson:"created"`
	Expires time.Time     `bson:"expires"`
	CSRF    string        `bson:"csrf"`
}

func (d *sessionDoc) session() Session {
	return Session{UserID: d.UserID.Hex(), Created: d.Created, Expires: d.Expires, CSRFToken: d.CSRF}
}

// firstAdminID is the _id of the marker document whose unique insert decides which
// account is the first, and so the admin: an insert either wins or fails with a duplicate
// key, without a transaction or a concurrent update (doc.go, The embedded database).
const firstAdminID = "first_admin"

var (
	handleRE = regexp.MustCompile(`^[a-z0-9_]{3,24}$`)
	tokenEnc = base64.RawURLEncoding
)

const (
	minPassword = 10
	maxPassword = 200
	tokenBytes  = 32 // session tokens: 256 bits
)

func normalizeEmail(s string) string  { return strings.ToLower(strings.TrimSpace(s)) }
func normalizeHandle(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func validateEmail(email string) error {
	if email == "" {
		return invalid("email", "is required")
	}
	if len(email) > 254 {
		return invalid("email", "must be at most 254 characters")
	}
	a, err := mail.ParseAddress(email)
	local, domain, ok := strings.Cut(email, "@")
	if err != nil || a.Name != "" || a.Address != email || !ok || local == "" || len(local) > 64 ||
		!strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.ContainsAny(email, " \t\r\n<>()[],;:\"\\") {
		return invalid("email", "must look like name@example.com")
	}
	return nil
}

func validateHandle(handle string) error {
	if !handleRE.MatchString(handle) {
		return invalid("handle", "must be 3 to 24 characters: lowercase letters a-z, digits and _")
	}
	return nil
}

func validatePassword(pw string) error {
	if !utf8.ValidString(pw) {
		return invalid("password", "must be valid UTF-8 text")
	}
	if n := utf8.RuneCountInString(pw); n < minPassword || n > maxPassword {
		return invalid("password", "must be %d to %d characters", minPassword, maxPassword)
	}
	return nil
}

// SignUp creates an account and signs it in. Email and handle are trimmed and lowercased;
// the first account ever created is the admin. Errors: a *ValidationError (ErrInvalid),
// a *ConflictError naming "email" or "handle" (ErrConflict), ErrUnavailable.
func (s *Service) SignUp(ctx context.Context, in SignUp) (Login, error) {
	email, handle := normalizeEmail(in.Email), normalizeHandle(in.Handle)
	if err := validateEmail(email); err != nil {
		return Login{}, err
	}
	if err := validateHandle(handle); err != nil {
		return Login{}, err
	}
	if err := validatePassword(in.Password); err != nil {
		return Login{}, err
	}
	// Tell a taken email or handle before paying for a hash; the unique indexes decide.
	if err := s.checkTaken(ctx, email, handle); err != nil {
		return Login{}, err
	}
	now := s.now()
	signUpKey := ""
	if ip := ipKey(in.IP); ip != "" {
		signUpKey = "signup:" + ip
	}
	if wait, err := s.sharedWait(ctx, signUpKey, s.cfg.SignUpLimit, now); err != nil {
		return Login{}, err
	} else if wait > 0 {
		s.log.Warn("sign-up refused: address rate limited", "ip", ipKey(in.IP))
		return Login{}, &RateLimitError{Scope: "signup", RetryAfter: wait}
	}
	// Every sign-up that costs a hash counts, whether or not the account is made.
	s.storeFailure(ctx, now, "", signUpKey)
	hash, err := s.hashSignUp(ctx, in.Password)
	if err != nil {
		return Login{}, err
	}
	d := userDoc{ID: bson.NewObjectID(), Email: email, Handle: handle, Password: hash, Created: s.now()}
	err = s.insertAccount(ctx, &d)
	if mongodb.IsDup(err) {
		if err := s.checkTaken(ctx, email, handle); err != nil {
			return Login{}, err
		}
		return Login{}, &ConflictError{Field: "email", Message: "is already registered"}
	}
	if err != nil {
		return Login{}, err
	}
	l, err := s.startSession(ctx, &d)
	if err == nil {
		l.Device = s.newDevice(ctx, d.ID)
	}
	return l, err
}

// insertAccount stores a new account and makes the first account ever the admin. A
// duplicate email or handle is returned as the driver's error (see isDup).
func (s *Service) insertAccount(ctx context.Context, d *userDoc) error {
	octx, cancel := s.op(ctx)
	_, err := s.users.InsertOne(octx, d)
	cancel()
	if mongodb.IsDup(err) {
		return err
	}
	if err != nil {
		return dbError("create account", err)
	}
	log := s.log.With("user_id", d.ID.Hex(), "handle", d.Handle)

	// The marker's unique _id makes exactly one account the first, even when many sign up
	// at once. A crash between the two writes is repaired by EnsureIndexes.
	octx, cancel = s.op(ctx)
	_, err = s.meta.InsertOne(octx, bson.D{{Key: "_id", Value: firstAdminID}, {Key: "user_id", Value: d.ID}, {Key: "created", Value: d.Created}})
	cancel()
	switch {
	case err == nil:
		if err := s.grantAdmin(ctx, d.ID); err != nil {
			// The account exists; EnsureIndexes at the next start finishes the grant.
			log.Error("first account created but admin not yet granted", "err", err)
			return err
		}
		d.Admin = true
		log.Info("first account created: admin")
	case mongodb.IsDup(err):
	default:
		// The account exists (the user can log in); if the marker is still missing,
		// EnsureIndexes at the next start gives it to the oldest account.
		log.Warn("first-admin check failed", "err", err)
		return dbError("sign up: first-admin check", err)
	}
	log.Info("account created")
	return nil
}

func (s *Service) checkTaken(ctx context.Context, email, handle string) error {
	for _, f := range []struct{ field, value string }{{"email", email}, {"handle", handle}} {
		octx, cancel := s.op(ctx)
		n, err := s.users.CountDocuments(octx, bson.D{{Key: f.field, Value: f.value}}, options.Count().SetLimit(1))
		cancel()
		if err != nil {
			return dbError("sign up: check "+f.field, err)
		}
		if n > 0 {
			msg := "is already registered"
			if f.field == "handle" {
				msg = "is already taken"
			}
			return &ConflictError{Field: f.field, Message: msg}
		}
	}
	return nil
}

func (s *Service) grantAdmin(ctx context.Context, id bson.ObjectID) error {
	octx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.users.UpdateOne(octx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "admin", Value: true}}}})
	return dbError("grant admin", err)
}

// repairFirstAdmin finishes a first-admin decision that an outage or crash interrupted:
// accounts exist but no marker (the oldest account claims it), or a marker whose account
// was not yet granted.
func (s *Service) repairFirstAdmin(ctx context.Context) error {
	var m struct {
		UserID bson.ObjectID `bson:"user_id"`
	}
	err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: firstAdminID}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		var first userDoc
		err = s.users.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "created", Value: 1}, {Key: "_id", Value: 1}})).Decode(&first)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil // no account yet: the first sign-up claims the marker
		}
		if err != nil {
			return dbError("find first account", err)
		}
		_, err = s.meta.InsertOne(ctx, bson.D{{Key: "_id", Value: firstAdminID}, {Key: "user_id", Value: first.ID}, {Key: "created", Value: s.now()}})
		if err != nil && !mongodb.IsDup(err) {
			return dbError("claim first-admin marker", err)
		}
		err = s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: firstAdminID}}).Decode(&m)
	}
	if err != nil {
		return dbError("read first-admin marker", err)
	}
	res, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: m.UserID}, {Key: "admin", Value: false}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "admin", Value: true}}}})
	if err != nil {
		return dbError("repair first admin", err)
	}
	if res.ModifiedCount > 0 {
		s.log.Info("first account made admin (interrupted grant repaired)", "user_id", m.UserID.Hex())
	}
	return nil
}

// LogIn checks an email or handle and a password and starts a session. An unknown
// account and a wrong password both return ErrInvalidCredentials after the same work.
// Failed attempts are limited per account and per IP: past the limit every attempt,
// right or wrong, gets a *RateLimitError (ErrRateLimited) until the window has passed.
func (s *Service) LogIn(ctx context.Context, in LogIn) (Login, error) {
	now := s.now()
	in.IP = ipKey(in.IP)
	if wait := s.ipFails.blocked(in.IP, now); wait > 0 {
		s.log.Warn("login refused: IP rate limited", "ip", in.IP)
		return Login{}, &RateLimitError{Scope: "ip", RetryAfter: wait}
	}
	ipLimitKey := ""
	if in.IP != "" {
		ipLimitKey = "ip:" + in.IP
	}
	if wait, err := s.sharedWait(ctx, ipLimitKey, s.cfg.IPLimit, now); err != nil {
		return Login{}, err
	} else if wait > 0 {
		s.log.Warn("login refused: IP rate limited across nodes", "ip", in.IP)
		return Login{}, &RateLimitError{Scope: "ip", RetryAfter: wait}
	}
	login := strings.ToLower(strings.TrimSpace(in.Login))
	field := "handle"
	if strings.Contains(login, "@") {
		field = "email"
	}
	var d userDoc
	found := false
	if login != "" && len(login) <= 254 {
		octx, cancel := s.op(ctx)
		err := s.users.FindOne(octx, bson.D{{Key: field, Value: login}}).Decode(&d)
		cancel()
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, mongo.ErrNoDocuments):
			return Login{}, dbError("log in", err)
		}
	}
	// Failures of an existing account count against it by id, whether it was named by
	// email or handle; those of an unknown name against that name. Each counts against
	// the account from this address and against the account from everywhere.
	acct := "acct:name:" + login
	if found {
		acct = "acct:user:" + d.ID.Hex()
	}
	fromHere := acct + "|" + ipLimitKey
	// Only the stored failures count for an account: a success on any node clears them.
	if wait, err := s.sharedWait(ctx, fromHere, s.cfg.AccountLimit, now); err != nil {
		return Login{}, err
	} else if wait > 0 {
		s.log.Warn("login refused: account rate limited from this address", "ip", in.IP, "user_id", idOrEmpty(found, d.ID))
		return Login{}, &RateLimitError{Scope: "account", RetryAfter: wait}
	}
	device := false
	if found && in.Device != "" {
		var err error
		if device, err = s.knownDevice(ctx, in.Device, d.ID); err != nil {
			return Login{}, err
		}
	}
	if !device {
		if wait, err := s.sharedWait(ctx, acct, s.cfg.AccountTotalLimit, now); err != nil {
			return Login{}, err
		} else if wait > 0 {
			s.log.Warn("login refused: account rate limited from all addresses", "ip", in.IP, "user_id", idOrEmpty(found, d.ID))
			return Login{}, &RateLimitError{Scope: "account", RetryAfter: wait}
		}
	}
	// Accounts made by an external sign-in have no password: they cost the same work.
	hasPassword := found && d.Password != ""
	encoded := s.dummyHash
	if hasPassword {
		encoded = d.Password
	}
	ok, err := s.verify(ctx, encoded, in.Password)
	if err != nil {
		if errors.Is(err, errBadHash) {
			s.log.Error("stored password hash is malformed", "user_id", d.ID.Hex())
		} else {
			return Login{}, err
		}
	}
	if !ok || !hasPassword {
		s.ipFails.fail(in.IP, now)
		s.storeFailure(ctx, now, acct, acct, fromHere, ipLimitKey)
		s.log.Info("login failed", "ip", in.IP, "user_id", idOrEmpty(found, d.ID))
		return Login{}, ErrInvalidCredentials
	}
	s.forgetFailures(ctx, acct)
	if d.Disabled {
		s.log.Info("login refused: account disabled", "user_id", d.ID.Hex(), "ip", in.IP)
		return Login{}, fmt.Errorf("log in @%s: %w", d.Handle, ErrAccountDisabled)
	}
	l, err := s.startSession(ctx, &d)
	if err != nil {
		return l, err
	}
	s.log.Info("logged in", "user_id", d.ID.Hex(), "ip", in.IP, "known_device", device)
	if !device {
		l.Device = s.newDevice(ctx, d.ID)
	}
	return l, nil
}

// ipKey is the key of the per-IP limit: the address, or its /64 for IPv6, since one
// client commonly holds a whole /64.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func idOrEmpty(found bool, id bson.ObjectID) string {
	if !found {
		return ""
	}
	return id.Hex()
}

func (s *Service) hash(ctx context.Context, password string) (string, error) {
	release, err := s.acquireHash(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return hashPassword(password, s.cfg.Password)
}

func (s *Service) verify(ctx context.Context, encoded, password string) (bool, error) {
	release, err := s.acquireHash(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	return verifyPassword(encoded, password)
}

// hashSignUp hashes a new account's password within the sign-ups' share of the slots.
func (s *Service) hashSignUp(ctx context.Context, password string) (string, error) {
	select {
	case s.signUpSem <- struct{}{}:
		defer func() { <-s.signUpSem }()
	case <-ctx.Done():
		return "", fmt.Errorf("wait for password hashing: %w", ctx.Err())
	}
	return s.hash(ctx, password)
}

func (s *Service) acquireHash(ctx context.Context) (func(), error) {
	select {
	case s.hashSem <- struct{}{}:
		return func() { <-s.hashSem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for password hashing: %w", ctx.Err())
	}
}

func (s *Service) startSession(ctx context.Context, u *userDoc) (Login, error) {
	token := randomToken(tokenBytes)
	now := s.now()
	d := sessionDoc{ID: tokenHash(token), UserID: u.ID, Created: now, Expires: now.Add(s.cfg.SessionTTL), CSRF: randomToken(tokenBytes)}
	octx, cancel := s.op(ctx)
	defer cancel()
	if _, err := s.sessions.InsertOne(octx, d); err != nil {
		return Login{}, dbError("start session", err)
	}
	return Login{User: u.user(), Session: d.session(), Token: token}, nil
}

// Authenticate returns the user and session of a session token, or ErrUnauthorized for
// a token that is malformed, unknown, expired or whose account is gone.
func (s *Service) Authenticate(ctx context.Context, token string) (User, Session, error) {
	if !wellFormedToken(token) {
		return User{}, Session{}, fmt.Errorf("authenticate: %w", ErrUnauthorized)
	}
	sd, err := byHash[sessionDoc](ctx, s, s.sessions, token, "authenticate")
	if err != nil {
		return User{}, Session{}, err
	}
	u, err := s.holder(ctx, sd.UserID, sd.Expires, "authenticate")
	if err != nil {
		return User{}, Session{}, err
	}
	return u, sd.session(), nil
}

// byHash reads the document of coll whose _id is the hash of token (a session's or an API
// token's): ErrUnauthorized when there is none (unknown, revoked or logged out).
func byHash[D any](ctx context.Context, s *Service, coll *mongo.Collection, token, what string) (D, error) {
	var d D
	octx, cancel := s.op(ctx)
	defer cancel()
	err := coll.FindOne(octx, bson.D{{Key: "_id", Value: tokenHash(token)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, fmt.Errorf("%s: unknown or revoked: %w", what, ErrUnauthorized)
	}
	if err != nil {
		return d, dbError(what, err)
	}
	return d, nil
}

// holder is the account a session or API token (what, in errors) that lasts until expires
// belongs to: ErrUnauthorized once it expired, or when the account is gone or disabled.
func (s *Service) holder(ctx context.Context, uid bson.ObjectID, expires time.Time, what string) (User, error) {
	if !s.now().Before(expires) {
		return User{}, fmt.Errorf("%s: expired: %w", what, ErrUnauthorized)
	}
	u, err := s.userByID(ctx, uid)
	switch {
	case errors.Is(err, ErrNotFound):
		return User{}, fmt.Errorf("%s: account gone: %w", what, ErrUnauthorized)
	case err != nil:
		return User{}, err
	case u.Disabled:
		return User{}, fmt.Errorf("%s: account disabled: %w", what, ErrUnauthorized)
	}
	return u, nil
}

// LogOut deletes the token's session. Logging out an unknown or expired session is not an
// error.
func (s *Service) LogOut(ctx context.Context, token string) error {
	if !wellFormedToken(token) {
		return nil
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.sessions.DeleteOne(octx, bson.D{{Key: "_id", Value: tokenHash(token)}})
	return dbError("log out", err)
}

// DeleteExpiredSessions deletes every expired session and says how many; Run calls it
// periodically instead of a TTL index (doc.go, The embedded database).
func (s *Service) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	octx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.sessions.DeleteMany(octx, bson.D{{Key: "expires", Value: bson.D{{Key: "$lte", Value: s.now()}}}})
	if err != nil {
		return 0, dbError("delete expired sessions", err)
	}
	return res.DeletedCount, nil
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return tokenEnc.EncodeToString(b)
}

func wellFormedToken(token string) bool {
	b, err := tokenEnc.DecodeString(token)
	return err == nil && len(b) == tokenBytes
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
