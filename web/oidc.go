package web

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"onair/rooms"
	"onair/rooms/oidc"
)

// Sign-in through an external OpenID Connect provider (config auth.oidc_*). The browser
// goes to the provider from oidcLogin and comes back to oidcCallback; what the callback
// must check (state, nonce, PKCE verifier) and where to go next wait in a short-lived
// httpOnly cookie, so any node behind a load balancer can finish the sign-in.
const (
	oidcCookie       = "onair_oidc"
	oidcCookiePath   = "/api/v1/auth/oidc/"
	oidcCallbackPath = "/api/v1/auth/oidc/callback"
	oidcCookieMaxAge = 600 // seconds to sign in at the provider
)

const signInExpired = "This sign-in was not started from this browser, or took too long. Start again from the login page."

type oidcPending struct {
	oidc.Pending
	Next string `json:"next"`
	// Link is the id of the signed-in account the identity is to be linked to, when the
	// sign-in was started from inside an account (?link=1) rather than to log in.
	Link string `json:"link,omitempty"`
}

func (s *Server) oidcLogin(w http.ResponseWriter, r *http.Request) {
	if s.cfg.OIDC == nil {
		writeAPIError(w, http.StatusNotFound, "not_found", "", "sign-in with an identity provider is not configured")
		return
	}
	next := r.URL.Query().Get("next")
	if !localPath(next) {
		next = "/dashboard"
	}
	var link string
	if r.URL.Query().Get("link") == "1" {
		u := userOf(r)
		if u == nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		link = u.ID
	}
	to, pending, err := s.cfg.OIDC.Start(r.Context(), s.ownOrigin(r)+oidcCallbackPath)
	if err != nil {
		s.log.Warn("oidc sign-in cannot start", "err", err)
		s.message(w, r, http.StatusServiceUnavailable, "Sign-in unavailable", "The identity provider cannot be reached right now. Try again in a moment, or log in with a password.")
		return
	}
	value, err := json.Marshal(oidcPending{Pending: pending, Next: next, Link: link})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: oidcCookie, Value: base64.RawURLEncoding.EncodeToString(value), Path: oidcCookiePath,
		MaxAge: oidcCookieMaxAge, HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
}

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if s.cfg.OIDC == nil {
		writeAPIError(w, http.StatusNotFound, "not_found", "", "sign-in with an identity provider is not configured")
		return
	}
	// The pending sign-in is used once, whatever happens.
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Path: oidcCookiePath, MaxAge: -1, HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	var pending oidcPending
	c, err := r.Cookie(oidcCookie)
	if err == nil {
		var raw []byte
		if raw, err = base64.RawURLEncoding.DecodeString(c.Value); err == nil {
			err = json.Unmarshal(raw, &pending)
		}
	}
	if err != nil || !localPath(pending.Next) {
		s.message(w, r, http.StatusBadRequest, "Sign-in expired", signInExpired)
		return
	}
	id, err := s.cfg.OIDC.Finish(r.Context(), pending.Pending, r.URL.Query())
	if err != nil {
		s.log.Warn("oidc sign-in refused", "err", err)
		switch {
		case errors.Is(err, oidc.ErrState):
			s.message(w, r, http.StatusBadRequest, "Sign-in expired", signInExpired)
		case errors.Is(err, oidc.ErrUnreachable):
			s.message(w, r, http.StatusServiceUnavailable, "Sign-in unavailable", "The identity provider cannot be reached right now. Try again in a moment.")
		default:
			s.message(w, r, http.StatusForbidden, "Sign-in refused", "The identity provider did not sign you in.")
		}
		return
	}
	ext := rooms.ExternalLogin{
		Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified,
		PreferredHandle: id.PreferredUsername,
	}
	if pending.Link != "" {
		s.oidcLink(w, r, pending, ext)
		return
	}
	l, err := s.cfg.Rooms.LogInExternal(r.Context(), ext)
	switch {
	case errors.Is(err, rooms.ErrLinkRequired):
		s.message(w, r, http.StatusConflict, "Link your account first",
			"An account with your email address already exists here. Log in with its password, then choose “Link "+s.cfg.OIDCName+"” on your dashboard: after that, this button signs you in.")
		return
	case errors.Is(err, rooms.ErrUnavailable):
		s.message(w, r, http.StatusServiceUnavailable, "Sign-in unavailable", "Accounts are unavailable right now. Try again in a moment.")
		return
	case err != nil:
		s.log.Warn("oidc sign-in: account", "err", err)
		s.message(w, r, http.StatusConflict, "Sign-in failed", err.Error())
		return
	}
	s.setSession(w, r, l)
	http.Redirect(w, r, pending.Next, http.StatusSeeOther)
}

// oidcLink links the identity the provider vouched for to the account that started the
// link, which must still be the one signed in in this browser.
func (s *Server) oidcLink(w http.ResponseWriter, r *http.Request, pending oidcPending, ext rooms.ExternalLogin) {
	u := userOf(r)
	if u == nil || u.ID != pending.Link {
		s.message(w, r, http.StatusForbidden, "Link refused", "Log in to the account you want to link, then start again from its dashboard.")
		return
	}
	if err := s.cfg.Rooms.LinkExternal(r.Context(), *u, ext); err != nil {
		if errors.Is(err, rooms.ErrUnavailable) {
			s.message(w, r, http.StatusServiceUnavailable, "Link unavailable", "Accounts are unavailable right now. Try again in a moment.")
			return
		}
		s.log.Warn("oidc link refused", "user_id", u.ID, "err", err)
		s.message(w, r, http.StatusConflict, "Link refused", "This "+s.cfg.OIDCName+" account already signs in to another account here.")
		return
	}
	http.Redirect(w, r, pending.Next, http.StatusSeeOther)
}
