package rooms

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPasswordHash(t *testing.T) {
	enc, err := hashPassword("correct horse battery", cheapPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(enc) {
		t.Fatalf("encoded %q is not a PHC argon2id string", enc)
	}
	again, _ := hashPassword("correct horse battery", cheapPassword)
	if again == enc {
		t.Error("same hash twice: no salt")
	}
	tests := []struct {
		name    string
		encoded string
		pw      string
		ok      bool
		err     error
	}{
		{"right", enc, "correct horse battery", true, nil},
		{"wrong", enc, "correct horse batterY", false, nil},
		{"empty", enc, "", false, nil},
		{"not phc", "plain", "x", false, errBadHash},
		{"other algorithm", strings.Replace(enc, "argon2id", "argon2i", 1), "correct horse battery", false, errBadHash},
		{"other version", strings.Replace(enc, "v=19", "v=16", 1), "correct horse battery", false, errBadHash},
		{"huge memory", strings.Replace(enc, "m=64", "m=99999999", 1), "correct horse battery", false, errBadHash},
		{"bad salt", strings.Replace(enc, "$v=19$m=64,t=1,p=1$", "$v=19$m=64,t=1,p=1$!!", 1), "correct horse battery", false, errBadHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := verifyPassword(tt.encoded, tt.pw)
			if ok != tt.ok || !errors.Is(err, tt.err) {
				t.Errorf("verify = %v, %v; want %v, %v", ok, err, tt.ok, tt.err)
			}
		})
	}
}

// TestPasswordCost hashes with the default parameters and logs what one hash costs here
// (the race detector makes it several times slower than in production).
func TestPasswordCost(t *testing.T) {
	start := time.Now()
	enc, err := hashPassword("correct horse battery", defaultPasswordParams)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("argon2id t=2 m=19MiB p=1: one hash took %s", time.Since(start))
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("encoded %q", enc)
	}
	if ok, err := verifyPassword(enc, "correct horse battery"); !ok || err != nil {
		t.Errorf("verify: %v %v", ok, err)
	}
}

// BenchmarkHashPassword measures the default cost: go test -run=^$ -bench=HashPassword ./rooms
func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := hashPassword("correct horse battery", defaultPasswordParams); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFailureWindow(t *testing.T) {
	w := newFailureWindow(RateLimit{Failures: 3, Window: time.Minute}, 2)
	t0 := time.Unix(1_000_000, 0)
	for i := range 3 {
		if d := w.blocked("k", t0); d != 0 {
			t.Fatalf("blocked before failure %d", i+1)
		}
		w.fail("k", t0.Add(time.Duration(i)*10*time.Second))
	}
	if d := w.blocked("k", t0.Add(20*time.Second)); d != 40*time.Second {
		t.Errorf("retry after %s, want 40s (the oldest failure leaves the window)", d)
	}
	if d := w.blocked("k", t0.Add(60*time.Second)); d != 0 {
		t.Errorf("still blocked once the oldest failure left the window: %s", d)
	}
	if d := w.blocked("other", t0); d != 0 {
		t.Error("other key blocked")
	}
	w.reset("k")
	if d := w.blocked("k", t0.Add(20*time.Second)); d != 0 {
		t.Error("blocked after reset")
	}
	// Bounded: a third key pushes old ones out rather than growing.
	w.fail("a", t0)
	w.fail("b", t0)
	w.fail("c", t0)
	if n := len(w.hits); n > 2 {
		t.Errorf("%d keys kept, want at most 2", n)
	}
	w.prune(t0.Add(time.Hour))
	if n := len(w.hits); n != 0 {
		t.Errorf("prune left %d keys", n)
	}
	off := newFailureWindow(RateLimit{Failures: -1, Window: time.Minute}, 2)
	for range 10 {
		off.fail("k", t0)
	}
	if off.blocked("k", t0) != 0 {
		t.Error("disabled limit blocks")
	}
}
