package rooms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/scripts/testenv"
)

func TestSignUpValidationAndConflicts(t *testing.T) {
	e := newEnv(t, nil)
	first := e.signUp("alice")
	if !first.User.Admin {
		t.Errorf("first account is not admin")
	}

	const pw = "long enough password"
	tests := []struct {
		name      string
		in        SignUp
		wantErr   error
		wantField string
	}{
		{"ok, normalised", SignUp{Email: "  Bob@Example.COM ", Handle: "Bob_1", Password: pw}, nil, ""},
		{"empty email", SignUp{Email: "", Handle: "carol", Password: pw}, ErrInvalid, "email"},
		{"email without at", SignUp{Email: "carol.example.com", Handle: "carol", Password: pw}, ErrInvalid, "email"},
		{"email without domain dot", SignUp{Email: "carol@localhost", Handle: "carol", Password: pw}, ErrInvalid, "email"},
		{"email with display name", SignUp{Email: "Carol <carol@example.com>", Handle: "carol", Password: pw}, ErrInvalid, "email"},
		{"email with space", SignUp{Email: "ca rol@example.com", Handle: "carol", Password: pw}, ErrInvalid, "email"},
		{"handle too short", SignUp{Email: "carol@example.com", Handle: "ca", Password: pw}, ErrInvalid, "handle"},
		{"handle too long", SignUp{Email: "carol@example.com", Handle: strings.Repeat("c", 25), Password: pw}, ErrInvalid, "handle"},
		{"handle with dash", SignUp{Email: "carol@example.com", Handle: "car-ol", Password: pw}, ErrInvalid, "handle"},
		{"handle with space", SignUp{Email: "carol@example.com", Handle: "car ol", Password: pw}, ErrInvalid, "handle"},
		{"password too short", SignUp{Email: "carol@example.com", Handle: "carol", Password: "123456789"}, ErrInvalid, "password"},
		{"password too long", SignUp{Email: "carol@example.com", Handle: "carol", Password: strings.Repeat("p", 201)}, ErrInvalid, "password"},
		{"password 10 runes", SignUp{Email: "dave@example.com", Handle: "dave", Password: "ääääääääää"}, nil, ""},
		{"email taken, other case", SignUp{Email: "ALICE@example.com", Handle: "alice2", Password: pw}, ErrConflict, "email"},
		{"handle taken, other case", SignUp{Email: "alice2@example.com", Handle: "ALICE", Password: pw}, ErrConflict, "handle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := e.svc.SignUp(e.ctx(), tt.in)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if l.User.Email != normalizeEmail(tt.in.Email) || l.User.Handle != normalizeHandle(tt.in.Handle) {
					t.Errorf("user = %+v, want normalised email and handle", l.User)
				}
				if l.User.Admin {
					t.Errorf("second account is admin")
				}
				if l.Token == "" || l.Session.CSRFToken == "" || l.Session.UserID != l.User.ID {
					t.Errorf("no session: %+v", l)
				}
				return
			}
			var field string
			var ve *ValidationError
			var ce *ConflictError
			switch {
			case errors.As(err, &ve):
				field = ve.Field
				if ve.Message == "" {
					t.Errorf("validation error without message")
				}
			case errors.As(err, &ce):
				field = ce.Field
			}
			if field != tt.wantField {
				t.Errorf("field = %q, want %q (err %v)", field, tt.wantField, err)
			}
			if Code(err) == CodeInternal {
				t.Errorf("Code(%v) = internal", err)
			}
		})
	}
	e.assertNotLogged(pw, first.Token)
}

func TestFirstAdminRace(t *testing.T) {
	e := newEnv(t, nil)
	const n = 10
	var wg sync.WaitGroup
	logins := make([]Login, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := "racer_" + string(rune('a'+i))
			logins[i], errs[i] = e.svc.SignUp(e.ctx(), SignUp{Email: h + "@example.com", Handle: h, Password: "correct horse battery"})
		}()
	}
	wg.Wait()
	admins := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("sign up %d: %v", i, errs[i])
		}
		if logins[i].User.Admin {
			admins++
		}
	}
	if admins != 1 {
		t.Fatalf("%d admins among %d concurrent sign-ups, want 1", admins, n)
	}
	stored, err := e.db.Collection("users").CountDocuments(e.ctx(), bson.D{{Key: "admin", Value: true}})
	if err != nil || stored != 1 {
		t.Fatalf("admins stored = %d, %v; want 1", stored, err)
	}
	// Authenticate sees it too, and a later account is no admin.
	for _, l := range logins {
		u, _, err := e.svc.Authenticate(e.ctx(), l.Token)
		if err != nil || u.Admin != l.User.Admin {
			t.Fatalf("authenticate %s: %+v %v", l.User.Handle, u, err)
		}
	}
	if e.signUp("latecomer").User.Admin {
		t.Fatal("a later account is admin")
	}
}

func TestFirstAdminRepair(t *testing.T) {
	e := newEnv(t, nil)
	a := e.signUp("alice")
	// Simulate an outage that lost the first-admin decision: no marker, no admin.
	if _, err := e.db.Collection("rooms_meta").DeleteMany(e.ctx(), bson.D{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Collection("users").UpdateMany(e.ctx(), bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "admin", Value: false}}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.EnsureIndexes(e.ctx()); err != nil {
		t.Fatal(err)
	}
	u, err := e.svc.FindUser(e.ctx(), a.User.ID)
	if err != nil || !u.Admin {
		t.Fatalf("oldest account after repair: %+v %v; want admin", u, err)
	}
	if e.signUp("bob").User.Admin {
		t.Fatal("a later account is admin")
	}
	n, _ := e.db.Collection("users").CountDocuments(e.ctx(), bson.D{{Key: "admin", Value: true}})
	if n != 1 {
		t.Fatalf("%d admins after repair", n)
	}
}

func TestLogIn(t *testing.T) {
	e := newEnv(t, nil)
	const pw = "correct horse battery"
	alice := e.signUp("alice")
	tests := []struct {
		name    string
		login   string
		pw      string
		wantErr error
	}{
		{"by email", "alice@example.com", pw, nil},
		{"by email, other case and spaces", "  ALICE@Example.com ", pw, nil},
		{"by handle", "alice", pw, nil},
		{"by handle, other case", "Alice", pw, nil},
		{"wrong password", "alice", pw + "!", ErrInvalidCredentials},
		{"unknown handle", "mallory", pw, ErrInvalidCredentials},
		{"unknown email", "mallory@example.com", pw, ErrInvalidCredentials},
		{"empty", "", "", ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := e.svc.LogIn(e.ctx(), LogIn{Login: tt.login, Password: tt.pw, IP: "192.0.2.1"})
			if err != tt.wantErr { // the very same error value for unknown and wrong
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrUnauthorized) || Code(err) != CodeUnauthorized {
					t.Errorf("Code = %s", Code(err))
				}
				return
			}
			if l.User.ID != alice.User.ID || l.Token == "" || l.Token == alice.Token {
				t.Fatalf("login = %+v", l)
			}
			u, _, err := e.svc.Authenticate(e.ctx(), l.Token)
			if err != nil || u.ID != alice.User.ID {
				t.Fatalf("authenticate new session: %+v %v", u, err)
			}
		})
	}
	e.assertNotLogged(pw, alice.Token)
}

// TestLogInTiming checks that an unknown account costs a hash as a wrong password does,
// so that timing does not tell which accounts exist.
func TestLogInTiming(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Password = PasswordParams{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}
		c.AccountLimit.Failures = -1
		c.IPLimit.Failures = -1
	})
	e.signUp("alice")
	measure := func(login string) time.Duration {
		best := time.Hour
		for range 5 {
			start := time.Now()
			_, err := e.svc.LogIn(e.ctx(), LogIn{Login: login, Password: "wrong password!"})
			if !errors.Is(err, ErrInvalidCredentials) {
				t.Fatal(err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	wrong, unknown := measure("alice"), measure("nobody_here")
	t.Logf("wrong password %s, unknown account %s", wrong, unknown)
	if unknown < wrong/3 || unknown > wrong*3 {
		t.Errorf("unknown account took %s, wrong password %s: not similar", unknown, wrong)
	}
}

func TestLogInRateLimits(t *testing.T) {
	e := newEnv(t, nil) // defaults: 5 per account, 20 per IP, per 15 min
	const pw = "correct horse battery"
	e.signUp("alice")
	bob := e.signUp("bob")
	login := func(name, password, ip string) error {
		_, err := e.svc.LogIn(e.ctx(), LogIn{Login: name, Password: password, IP: ip})
		return err
	}

	t.Run("per account and address, by email and handle alike", func(t *testing.T) {
		for i := range 5 {
			name := "alice"
			if i%2 == 1 {
				name = "alice@example.com"
			}
			if err := login(name, "wrong password", "198.51.100.1"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		}
		// Even the right password is refused now from that address.
		err := login("alice", pw, "198.51.100.1")
		var rl *RateLimitError
		if !errors.As(err, &rl) || !errors.Is(err, ErrRateLimited) || rl.Scope != "account" {
			t.Fatalf("6th attempt: %v, want account rate limit", err)
		}
		if rl.RetryAfter < 14*time.Minute || rl.RetryAfter > 15*time.Minute {
			t.Errorf("retry after %s, want about 15 min", rl.RetryAfter)
		}
		if Code(err) != CodeRateLimited {
			t.Errorf("Code = %s", Code(err))
		}
		// The owner, from elsewhere, is not locked out by whoever failed five times
		// (handles are public), and another account is not affected.
		if err := login("alice", pw, "198.51.100.2"); err != nil {
			t.Fatalf("alice from another address: %v", err)
		}
		if err := login("bob", pw, "198.51.100.2"); err != nil {
			t.Fatalf("bob: %v", err)
		}
		// The success cleared the account's failures, from that address too.
		if err := login("alice", pw, "198.51.100.1"); err != nil {
			t.Fatalf("after the owner's success: %v", err)
		}
	})

	t.Run("success resets the account's count", func(t *testing.T) {
		for range 4 {
			_ = login("bob", "wrong password", "198.51.100.3")
		}
		if err := login("bob", pw, "198.51.100.3"); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			_ = login("bob", "wrong password", "198.51.100.3")
		}
		if err := login("bob", pw, "198.51.100.3"); err != nil {
			t.Fatalf("after reset: %v", err)
		}
		_ = bob
	})

	t.Run("per IP, across accounts", func(t *testing.T) {
		const ip = "203.0.113.9"
		for i := range 20 {
			// Unknown names, so that no account limit is reached first.
			if err := login("nobody_"+string(rune('a'+i)), "wrong password", ip); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		}
		err := login("bob", pw, ip)
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.Scope != "ip" || rl.RetryAfter <= 0 {
			t.Fatalf("21st attempt from the IP: %v, want ip rate limit", err)
		}
		if err := login("bob", pw, "203.0.113.10"); err != nil {
			t.Fatalf("other IP: %v", err)
		}
		e.clock.Advance(15 * time.Minute)
		if err := login("bob", pw, ip); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})

	t.Run("per IPv6 /64", func(t *testing.T) {
		for i := range 20 {
			ip := fmt.Sprintf("2001:db8:1:2::%x", i+1) // a new address every time, one /64
			if err := login(fmt.Sprintf("nobody6_%d", i), "wrong password", ip); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		}
		if err := login("bob", pw, "2001:db8:1:2:ffff::1"); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("same /64: %v, want rate limited", err)
		}
		if err := login("bob", pw, "2001:db8:1:3::1"); err != nil {
			t.Fatalf("other /64: %v", err)
		}
	})
}

func TestSessions(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SessionTTL = time.Hour })
	alice := e.signUp("alice")

	u, sess, err := e.svc.Authenticate(e.ctx(), alice.Token)
	if err != nil || u.ID != alice.User.ID || u.Handle != "alice" {
		t.Fatalf("authenticate: %+v %v", u, err)
	}
	if got := sess.Expires.Sub(sess.Created); got != time.Hour {
		t.Errorf("session lasts %s, want 1h", got)
	}
	if !sess.CheckCSRF(alice.Session.CSRFToken) || sess.CheckCSRF("") || sess.CheckCSRF(alice.Token) {
		t.Errorf("CheckCSRF")
	}
	if len(alice.Token) != 43 { // 256 bits, base64url without padding
		t.Errorf("token length %d", len(alice.Token))
	}
	// Only the token's hash is stored.
	n, _ := e.db.Collection("sessions").CountDocuments(e.ctx(), bson.D{{Key: "_id", Value: alice.Token}})
	if n != 0 {
		t.Errorf("token stored in clear")
	}

	for _, tok := range []string{"", "short", alice.Token + "x", strings.Repeat("A", 43)} {
		if _, _, err := e.svc.Authenticate(e.ctx(), tok); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("authenticate %q: %v, want ErrUnauthorized", tok, err)
		}
	}

	// Expiry, by the injected clock.
	e.clock.Advance(59 * time.Minute)
	if _, _, err := e.svc.Authenticate(e.ctx(), alice.Token); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	second, err := e.svc.LogIn(e.ctx(), LogIn{Login: "alice", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	if _, _, err := e.svc.Authenticate(e.ctx(), alice.Token); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("after expiry: %v, want ErrUnauthorized", err)
	}

	// The janitor deletes expired sessions only. (Run's own first pass may be late on a
	// busy machine and delete it first, hence at most 1 here.)
	deleted, err := e.svc.DeleteExpiredSessions(e.ctx())
	if err != nil || deleted > 1 {
		t.Fatalf("janitor deleted %d, %v; want at most 1", deleted, err)
	}
	if n, _ := e.db.Collection("sessions").CountDocuments(e.ctx(), bson.D{{Key: "_id", Value: tokenHash(alice.Token)}}); n != 0 {
		t.Fatal("the expired session is still stored")
	}
	if left, _ := e.db.Collection("sessions").CountDocuments(e.ctx(), bson.D{}); left != 1 {
		t.Fatalf("%d sessions left, want 1", left)
	}

	// Log out ends the session server-side; logging out again is fine.
	if _, _, err := e.svc.Authenticate(e.ctx(), second.Token); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.LogOut(e.ctx(), second.Token); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.Authenticate(e.ctx(), second.Token); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("after log out: %v", err)
	}
	if err := e.svc.LogOut(e.ctx(), second.Token); err != nil {
		t.Fatalf("second log out: %v", err)
	}
	e.assertNotLogged(alice.Token, second.Token)
}

func TestJanitorRunsPeriodically(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.SessionTTL = time.Minute
		c.JanitorInterval = 50 * time.Millisecond
	})
	e.signUp("alice")
	e.clock.Advance(2 * time.Minute)
	testenv.Eventually(t, 3*time.Second, func() (bool, string) {
		n, err := e.db.Collection("sessions").CountDocuments(context.Background(), bson.D{})
		return err == nil && n == 0, "janitor deletes the expired session: sessions left"
	})
}

// TestLogInRateLimitsAcrossNodes: failed logins on one node count on every node sharing
// the database, so spreading attempts over nodes gains nothing.
func TestLogInRateLimitsAcrossNodes(t *testing.T) {
	limits := func(c *Config) {
		c.AccountLimit = RateLimit{Failures: 3, Window: time.Minute}
		c.IPLimit = RateLimit{Failures: 5, Window: time.Minute}
	}
	e := newEnv(t, limits)
	cfg := Config{DB: e.db, Cluster: e.node("node-b", ""), Now: e.clock.Now, Password: cheapPassword, OpTimeout: time.Second}
	limits(&cfg)
	other, err := New(cfg) // a second node
	if err != nil {
		t.Fatal(err)
	}
	const pw = "correct horse battery"
	e.signUp("alice")
	e.signUp("bob")
	var rl *RateLimitError

	for range 3 {
		if _, err := e.svc.LogIn(e.ctx(), LogIn{Login: "alice", Password: "wrong", IP: "198.51.100.1"}); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failed login on node 1: %v", err)
		}
	}
	_, err = other.LogIn(e.ctx(), LogIn{Login: "alice", Password: pw, IP: "198.51.100.1"})
	if !errors.As(err, &rl) || rl.Scope != "account" || rl.RetryAfter < 59*time.Second {
		t.Fatalf("node 2 after 3 failures on node 1: %v, want the account limit for about a minute", err)
	}

	// Per IP: two more failures (other accounts) from the same address on node 1.
	for _, name := range []string{"bob", "nobody"} {
		_, _ = e.svc.LogIn(e.ctx(), LogIn{Login: name, Password: "wrong", IP: "198.51.100.1"})
	}
	if _, err := other.LogIn(e.ctx(), LogIn{Login: "bob", Password: pw, IP: "198.51.100.1"}); !errors.As(err, &rl) || rl.Scope != "ip" {
		t.Fatalf("node 2, same IP after 5 failures on node 1: %v, want the IP limit", err)
	}

	// A success clears the account's failures on every node; the window's end clears all.
	e.clock.Advance(time.Minute + time.Second)
	if _, err := other.LogIn(e.ctx(), LogIn{Login: "alice", Password: pw, IP: "198.51.100.2"}); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	for range 2 {
		_, _ = e.svc.LogIn(e.ctx(), LogIn{Login: "bob", Password: "wrong", IP: "198.51.100.3"})
	}
	if _, err := other.LogIn(e.ctx(), LogIn{Login: "bob", Password: pw, IP: "198.51.100.3"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, _ = e.svc.LogIn(e.ctx(), LogIn{Login: "bob", Password: "wrong", IP: "198.51.100.4"})
	}
	if _, err := other.LogIn(e.ctx(), LogIn{Login: "bob", Password: pw, IP: "198.51.100.4"}); err != nil {
		t.Fatalf("2 failures after a success: %v, want them to be the only ones counted", err)
	}
}

// TestAccountLockout: an attacker cannot lock an account's owner out. Failures from many
// addresses together hit AccountTotalLimit, but a browser that signed in to the account
// before (its device token) still gets in.
func TestAccountLockout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AccountTotalLimit = RateLimit{Failures: 6, Window: time.Minute} })
	const pw = "correct horse battery"
	first, err := e.svc.LogIn(e.ctx(), LogIn{Login: e.signUp("alice").User.Handle, Password: pw, IP: "198.51.100.7"})
	if err != nil || first.Device == "" {
		t.Fatalf("first login: device %q, %v", first.Device, err)
	}
	// Two failures from each of three addresses: none hits its own limit of 5.
	for i := range 6 {
		ip := fmt.Sprintf("203.0.113.%d", i/2)
		if _, err := e.svc.LogIn(e.ctx(), LogIn{Login: "alice", Password: "wrong password", IP: ip}); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	var rl *RateLimitError
	if _, err := e.svc.LogIn(e.ctx(), LogIn{Login: "alice", Password: pw, IP: "198.51.100.8"}); !errors.As(err, &rl) || rl.Scope != "account" {
		t.Fatalf("a new browser after failures from many addresses: %v, want the account limit", err)
	}
	// The owner's browser carries its device token: it is not locked out, and keeps it.
	l, err := e.svc.LogIn(e.ctx(), LogIn{Login: "alice", Password: pw, IP: "198.51.100.8", Device: first.Device})
	if err != nil || l.Device != "" {
		t.Fatalf("the owner's known browser: device %q, %v", l.Device, err)
	}
	// Another account's device token is no pass.
	bob, err := e.svc.LogIn(e.ctx(), LogIn{Login: e.signUp("bob").User.Handle, Password: pw, IP: "198.51.100.9"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		_, _ = e.svc.LogIn(e.ctx(), LogIn{Login: "alice", Password: "wrong password", IP: fmt.Sprintf("203.0.113.%d", 10+i/2)})
	}
	if _, err := e.svc.LogIn(e.ctx(), LogIn{Login: "alice", Password: pw, IP: "198.51.100.9", Device: bob.Device}); !errors.As(err, &rl) {
		t.Fatalf("alice with bob's device token: %v, want the account limit", err)
	}
}

// TestSignUpLimits: one address makes at most SignUpLimit accounts per window, and
// sign-ups hold at most half of the hashing slots, so that a flood of them leaves logins
// their share.
func TestSignUpLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConcurrentHashes = 4 })
	limit := e.svc.cfg.SignUpLimit
	if limit.Failures != 5 || limit.Window != time.Hour {
		t.Fatalf("default SignUpLimit = %+v, want 5 per hour", limit)
	}
	signUp := func(i int, ip string) error {
		_, err := e.svc.SignUp(e.ctx(), SignUp{Email: fmt.Sprintf("u%d@example.com", i), Handle: fmt.Sprintf("user_%d", i),
			Password: "correct horse battery", IP: ip})
		return err
	}
	for i := range limit.Failures {
		if err := signUp(i, "203.0.113.5"); err != nil {
			t.Fatalf("sign-up %d: %v", i+1, err)
		}
	}
	var rl *RateLimitError
	if err := signUp(99, "203.0.113.5"); !errors.As(err, &rl) || rl.Scope != "signup" || Code(err) != CodeRateLimited {
		t.Fatalf("sign-up past the limit: %v, want a signup rate limit", err)
	}
	if err := signUp(100, "203.0.113.6"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	e.clock.Advance(limit.Window + time.Second)
	if err := signUp(101, "203.0.113.5"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if got, want := cap(e.svc.signUpSem), cap(e.svc.hashSem)/2; got != want {
		t.Fatalf("sign-ups may hold %d hashing slots of %d, want %d", got, cap(e.svc.hashSem), want)
	}
}
