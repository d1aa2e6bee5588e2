// Package oidc signs users in with an external OpenID Connect provider (Keycloak, Cognito,
// Auth0, ...): the authorization code flow with PKCE, state and nonce, and an ID token
// whose signature, issuer, audience, expiry and nonce are verified.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config configures a Provider.
type Config struct {
	// Issuer is the provider's issuer URL, e.g. https://keycloak.example.com/realms/main;
	// its /.well-known/openid-configuration says where everything else is.
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes default to openid, email and profile.
	Scopes []string
	// HTTPClient talks to the provider; nil: a client with a 10 s timeout.
	HTTPClient *http.Client
}

// Identity is who the provider says signed in.
type Identity struct {
	Issuer  string
	Subject string // stable and unique within Issuer
	// Email is empty unless the provider gives one; EmailVerified says whether it vouches
	// for it.
	Email             string
	EmailVerified     bool
	PreferredUsername string
	Name              string
}

// Pending is what a sign-in must keep between Start and Finish (in the browser's cookie).
type Pending struct {
	State, Nonce, Verifier string
	RedirectURL            string
}

// Errors of Finish.
var (
	// ErrState: the callback does not belong to the sign-in this browser started (a
	// forged or replayed callback, or one whose cookie expired).
	ErrState = errors.New("oidc: sign-in state does not match")
	// ErrDenied: the provider answered with an error (the user declined, or the provider
	// refused the client).
	ErrDenied = errors.New("oidc: the provider refused the sign-in")
	// ErrUnreachable: the provider could not be reached or answered nonsense.
	ErrUnreachable = errors.New("oidc: the provider is unreachable")
)

// Provider is a configured OpenID Connect provider. Its discovery document is fetched on
// first use and kept, so onair starts while the provider is down.
type Provider struct {
	cfg Config

	mu  sync.Mutex
	got *discovered
}

type discovered struct {
	provider *gooidc.Provider
	endpoint oauth2.Endpoint
	verifier *gooidc.IDTokenVerifier
}

// New checks cfg.
func New(cfg Config) (*Provider, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("oidc: issuer %q is not an http(s) URL", cfg.Issuer)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("oidc: a client id is required")
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{gooidc.ScopeOpenID, "email", "profile"}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Provider{cfg: cfg}, nil
}

func (p *Provider) discover(ctx context.Context) (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.got != nil {
		return p.got, nil
	}
	prov, err := gooidc.NewProvider(gooidc.ClientContext(ctx, p.cfg.HTTPClient), p.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery at %s: %w", ErrUnreachable, p.cfg.Issuer, err)
	}
	p.got = &discovered{
		provider: prov,
		endpoint: prov.Endpoint(),
		verifier: prov.VerifierContext(gooidc.ClientContext(context.Background(), p.cfg.HTTPClient), &gooidc.Config{ClientID: p.cfg.ClientID}),
	}
	return p.got, nil
}

func (p *Provider) oauth(d *discovered, redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.cfg.ClientID,
		ClientSecret: p.cfg.ClientSecret,
		Endpoint:     d.endpoint,
		RedirectURL:  redirectURL,
		Scopes:       p.cfg.Scopes,
	}
}

// Start begins a sign-in that returns to redirectURL (which the provider must know). It
// returns where to send the browser and what to keep until Finish.
func (p *Provider) Start(ctx context.Context, redirectURL string) (string, Pending, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return "", Pending{}, err
	}
	pending := Pending{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), RedirectURL: redirectURL}
	u := p.oauth(d, redirectURL).AuthCodeURL(pending.State, gooidc.Nonce(pending.Nonce), oauth2.S256ChallengeOption(pending.Verifier))
	return u, pending, nil
}

// Finish completes the sign-in pending from the provider's callback query: it checks the
// state, redeems the code (with the PKCE verifier) and verifies the ID token.
func (p *Provider) Finish(ctx context.Context, pending Pending, query url.Values) (Identity, error) {
	if e := query.Get("error"); e != "" {
		return Identity{}, fmt.Errorf("%w: %s %s", ErrDenied, e, query.Get("error_description"))
	}
	state := query.Get("state")
	if pending.State == "" || subtle.ConstantTimeCompare([]byte(state), []byte(pending.State)) != 1 {
		return Identity{}, ErrState
	}
	code := query.Get("code")
	if code == "" {
		return Identity{}, fmt.Errorf("%w: the callback has no code", ErrDenied)
	}
	d, err := p.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	tok, err := p.oauth(d, pending.RedirectURL).Exchange(gooidc.ClientContext(ctx, p.cfg.HTTPClient), code, oauth2.VerifierOption(pending.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return Identity{}, fmt.Errorf("%w: code exchange: %s %s", ErrDenied, re.ErrorCode, re.ErrorDescription)
		}
		return Identity{}, fmt.Errorf("%w: code exchange: %w", ErrUnreachable, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: the token response has no ID token", ErrDenied)
	}
	idt, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: ID token: %w", ErrDenied, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pending.Nonce)) != 1 {
		return Identity{}, fmt.Errorf("%w: ID token nonce does not match", ErrState)
	}
	var claims profile
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: ID token claims: %w", ErrDenied, err)
	}
	if claims.Email == "" && claims.PreferredUsername == "" && d.provider.UserInfoEndpoint() != "" {
		// Many providers put the profile in the UserInfo answer only, not the ID token.
		info, err := d.provider.UserInfo(gooidc.ClientContext(ctx, p.cfg.HTTPClient), oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, fmt.Errorf("%w: userinfo: %w", ErrUnreachable, err)
		}
		if info.Subject != idt.Subject {
			return Identity{}, fmt.Errorf("%w: userinfo is about subject %q, the ID token about %q", ErrDenied, info.Subject, idt.Subject)
		}
		if err := info.Claims(&claims); err != nil {
			return Identity{}, fmt.Errorf("%w: userinfo claims: %w", ErrDenied, err)
		}
	}
	verified := claims.EmailVerified == true || claims.EmailVerified == "true"
	return Identity{
		Issuer:            idt.Issuer,
		Subject:           idt.Subject,
		Email:             strings.TrimSpace(claims.Email),
		EmailVerified:     verified,
		PreferredUsername: claims.PreferredUsername,
		Name:              claims.Name,
	}, nil
}

// profile is the standard claims onair uses (OpenID Connect Core 5.1).
type profile struct {
	Email             string `json:"email"`
	EmailVerified     any    `json:"email_verified"` // Cognito sends "true" as a string
	PreferredUsername string `json:"preferred_username"`
	Name              string `json:"name"`
}

// random is 128 bits for state and nonce.
func random() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
