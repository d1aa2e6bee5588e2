package oidc

import (
	"context"
	"errors"
	"net/url"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"https issuer", Config{Issuer: "https://idp.example.com/realms/main", ClientID: "onair"}, true},
		{"http issuer (a provider on the same host)", Config{Issuer: "http://localhost:9998/", ClientID: "onair"}, true},
		{"no client id", Config{Issuer: "https://idp.example.com"}, false},
		{"not a URL", Config{Issuer: "idp.example.com", ClientID: "onair"}, false},
		{"other scheme", Config{Issuer: "ftp://idp.example.com", ClientID: "onair"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok=%v", err, tt.ok)
			}
			if err == nil && len(p.cfg.Scopes) != 3 {
				t.Fatalf("default scopes = %v", p.cfg.Scopes)
			}
		})
	}
}

// TestFinishRefuses: callbacks that do not complete this browser's sign-in are refused
// before anything is asked of the provider (none runs here).
func TestFinishRefuses(t *testing.T) {
	p, err := New(Config{Issuer: "http://127.0.0.1:1/", ClientID: "onair"})
	if err != nil {
		t.Fatal(err)
	}
	pending := Pending{State: "s1", Nonce: "n1", Verifier: "v1", RedirectURL: "http://onair.test/cb"}
	tests := []struct {
		name    string
		pending Pending
		query   url.Values
		want    error
	}{
		{"provider error", pending, url.Values{"error": {"access_denied"}, "state": {"s1"}}, ErrDenied},
		{"other state", pending, url.Values{"code": {"c"}, "state": {"s2"}}, ErrState},
		{"no state", pending, url.Values{"code": {"c"}}, ErrState},
		{"nothing pending", Pending{}, url.Values{"code": {"c"}, "state": {""}}, ErrState},
		{"no code", pending, url.Values{"state": {"s1"}}, ErrDenied},
		{"provider down", pending, url.Values{"code": {"c"}, "state": {"s1"}}, ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := p.Finish(context.Background(), tt.pending, tt.query); !errors.Is(err, tt.want) {
				t.Fatalf("Finish: %v, want %v", err, tt.want)
			}
		})
	}
}
