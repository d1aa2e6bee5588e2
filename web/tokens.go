package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"onair/rooms"
)

// API tokens: "Authorization: Bearer onair_pat_…" makes a request the token's user's,
// within the token's scopes (routes.go, guard). Browsers never add that header by
// themselves, so such a request cannot be forged by another site: it needs no Origin
// check and no CSRF token (guardUnsafe). A request with a bearer token is authenticated by
// the token alone; any session cookie it also carries is ignored, so that the exemption
// never covers a cookie.

// tokenOf is the API token a request was authenticated with, nil for a session or none.
func tokenOf(r *http.Request) *rooms.Token {
	t, _ := r.Context().Value(tokenKey).(*rooms.Token)
	return t
}

// withAPIUser resolves the request's user for the API: from its bearer token when it has
// an Authorization header, else from its session cookie (withUser). A bearer token that
// does not authenticate is refused at once rather than treated as anonymous.
func (s *Server) withAPIUser(next http.Handler) http.Handler {
	cookies := s.withUser(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" || s.cfg.Rooms == nil {
			cookies.ServeHTTP(w, r)
			return
		}
		scheme, secret, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="onair"`)
			writeAPIError(w, http.StatusUnauthorized, "unauthorized", "", "send an API token as Authorization: Bearer <token>")
			return
		}
		u, tok, err := s.cfg.Rooms.AuthenticateToken(r.Context(), strings.TrimSpace(secret))
		switch {
		case errors.Is(err, rooms.ErrUnauthorized):
			w.Header().Set("WWW-Authenticate", `Bearer realm="onair", error="invalid_token"`)
			writeAPIError(w, http.StatusUnauthorized, "unauthorized", "", "the API token is unknown, revoked or expired, or its account is disabled")
			return
		case err != nil:
			s.fail(w, r, err)
			return
		}
		ctx := context.WithValue(r.Context(), userKey, &u)
		ctx = context.WithValue(ctx, tokenKey, &tok)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// tokenList is GET /api/v1/tokens.
type tokenList struct {
	Tokens []rooms.Token `json:"tokens"`
	// Scopes are the scopes a token may have; admin_only ones are for admins.
	Scopes []rooms.ScopeInfo `json:"scopes"`
}

// createTokenRequest is POST /api/v1/tokens.
type createTokenRequest struct {
	Name   string        `json:"name"`
	Scopes []rooms.Scope `json:"scopes"`
	// ExpiresInDays is the token's life: 1 to 366 days (default 30).
	ExpiresInDays int `json:"expires_in_days"`
}

// createTokenResponse carries the token's secret: the only time it is shown.
type createTokenResponse struct {
	Token  rooms.Token `json:"token"`
	Secret string      `json:"secret"`
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	u := viewerOf(r)
	toks, err := s.cfg.Rooms.Tokens(r.Context(), u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	scopes := make([]rooms.ScopeInfo, 0, len(rooms.Scopes))
	for _, sc := range rooms.Scopes {
		if !sc.AdminOnly || u.Admin {
			scopes = append(scopes, sc)
		}
	}
	writeJSON(w, http.StatusOK, tokenList{Tokens: toks, Scopes: scopes})
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var in createTokenRequest
	if !decode(w, r, &in) {
		return
	}
	if in.ExpiresInDays < 0 || in.ExpiresInDays > int(rooms.MaxTokenTTL/(24*time.Hour)) {
		writeAPIError(w, http.StatusBadRequest, "invalid", "expires_in_days", "expires_in_days must be between 1 and 366")
		return
	}
	tok, secret, err := s.cfg.Rooms.CreateToken(r.Context(), viewerOf(r), rooms.NewToken{
		Name: in.Name, Scopes: in.Scopes, TTL: time.Duration(in.ExpiresInDays) * 24 * time.Hour,
	})
	s.respond(w, r, http.StatusCreated, createTokenResponse{Token: tok, Secret: secret}, err)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Rooms.RevokeToken(r.Context(), viewerOf(r), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
