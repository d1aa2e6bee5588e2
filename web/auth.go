package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"onair/rooms"
)

// sessionCookie holds the session token. It is httpOnly: page JavaScript never sees it.
const sessionCookie = "onair_session"

// csrfHeader carries the session's CSRF token on unsafe requests.
const csrfHeader = "X-CSRF-Token"

type ctxKey int

const (
	userKey ctxKey = iota
	sessionKey
	tokenKey   // the API token a request was authenticated with (tokens.go)
	authErrKey // why a session cookie did not authenticate, when the database was down
)

// withUser resolves the session cookie, if any, into the request's user.
func (s *Server) withUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" || s.cfg.Rooms == nil {
			next.ServeHTTP(w, r)
			return
		}
		u, sess, err := s.cfg.Rooms.Authenticate(r.Context(), c.Value)
		switch {
		case err == nil:
			ctx := context.WithValue(r.Context(), userKey, &u)
			ctx = context.WithValue(ctx, sessionKey, &sess)
			r = r.WithContext(ctx)
		case errors.Is(err, rooms.ErrUnauthorized):
			s.clearSession(w, r) // expired or revoked
		case errors.Is(err, rooms.ErrUnavailable):
			// Pages and reads still work anonymously; signed-in actions answer 503.
			r = r.WithContext(context.WithValue(r.Context(), authErrKey, err))
		default:
			s.log.Warn("authenticate session", "err", err)
		}
		next.ServeHTTP(w, r)
	})
}

func userOf(r *http.Request) *rooms.User {
	u, _ := r.Context().Value(userKey).(*rooms.User)
	return u
}

func authErrOf(r *http.Request) error {
	err, _ := r.Context().Value(authErrKey).(error)
	return err
}

func sessionOf(r *http.Request) *rooms.Session {
	sess, _ := r.Context().Value(sessionKey).(*rooms.Session)
	return sess
}

// guardUnsafe protects state-changing requests against CSRF: the browser's Origin (or
// Referer) must be onair's own, and a signed-in request must carry the session's CSRF
// token. Requests without a session (sign up, log in) still need the Origin and a JSON
// body, which a cross-site form cannot send without a CORS preflight we never grant.
// Requests authenticated by an API token are exempt: no browser sends one by itself, and
// such a request's cookies are not used (tokens.go).
func (s *Server) guardUnsafe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if tokenOf(r) != nil {
			next.ServeHTTP(w, r)
			return
		}
		if !s.sameOrigin(r) {
			writeAPIError(w, http.StatusForbidden, "csrf", "", "cross-site request refused (Origin is not this site)")
			return
		}
		if err := authErrOf(r); err != nil {
			s.fail(w, r, err)
			return
		}
		if sess := sessionOf(r); sess != nil && !sess.CheckCSRF(r.Header.Get(csrfHeader)) {
			writeAPIError(w, http.StatusForbidden, "csrf", "", "missing or wrong "+csrfHeader+" header")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether the request comes from a page of this site.
func (s *Server) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		ref, err := url.Parse(r.Header.Get("Referer"))
		if err != nil || ref.Host == "" {
			return false
		}
		origin = ref.Scheme + "://" + ref.Host
	}
	if origin == s.ownOrigin(r) {
		return true
	}
	for _, o := range s.cfg.AllowedPageOrigins {
		if origin == o {
			return true
		}
	}
	return false
}

// ownOrigin is this site's origin: the configured public URL's, or the request's.
func (s *Server) ownOrigin(r *http.Request) string {
	if s.publicURL != nil {
		return s.publicURL.Scheme + "://" + s.publicURL.Host
	}
	scheme := "http"
	if s.secure(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// secure reports whether the browser reached us over TLS.
func (s *Server) secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if s.cfg.TrustProxy && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	return s.publicURL != nil && s.publicURL.Scheme == "https"
}

// clientIP is the address a login attempt and an HLS viewer are counted against.
func (s *Server) clientIP(r *http.Request) string {
	if s.cfg.TrustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			// The last hop was added by our own proxy; earlier ones are the client's word.
			parts := strings.Split(xff, ",")
			return strings.TrimSpace(parts[len(parts)-1])
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) setSession(w http.ResponseWriter, r *http.Request, l rooms.Login) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: l.Token, Path: "/",
		Expires: l.Session.Expires, MaxAge: int(time.Until(l.Session.Expires).Seconds()),
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode,
	})
}

// deviceCookie remembers a browser that signed in to an account with its password: its
// logins are exempt from the limit that failures from many addresses put on the account,
// so that nobody can lock an account's owner out. Only the auth API reads it.
const (
	deviceCookie     = "onair_device"
	deviceCookiePath = "/api/v1/auth/"
	deviceCookieAge  = 365 * 24 * 60 * 60
)

func (s *Server) setDevice(w http.ResponseWriter, r *http.Request, l rooms.Login) {
	if l.Device == "" {
		return // the browser's own is still good, or none could be stored
	}
	http.SetCookie(w, &http.Cookie{
		Name: deviceCookie, Value: l.Device, Path: deviceCookiePath, MaxAge: deviceCookieAge,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode,
	})
}

// me is what the page learns about the signed-in user.
type me struct {
	User rooms.User `json:"user"`
	// CSRFToken goes in the X-CSRF-Token header of the session's unsafe requests.
	CSRFToken string `json:"csrf_token,omitempty"`
	// Token is the API token a request was authenticated with (GET /auth/me).
	Token *rooms.Token `json:"token,omitempty"`
}

// signUpRequest is POST /api/v1/auth/signup.
type signUpRequest struct {
	Email    string `json:"email"`
	Handle   string `json:"handle"`
	Password string `json:"password"`
}

// logInRequest is POST /api/v1/auth/login.
type logInRequest struct {
	// Login is the account's email or handle.
	Login    string `json:"login"`
	Password string `json:"password"`
}

func (s *Server) signUp(w http.ResponseWriter, r *http.Request) {
	var in signUpRequest
	if !decode(w, r, &in) {
		return
	}
	l, err := s.cfg.Rooms.SignUp(r.Context(), rooms.SignUp{Email: in.Email, Handle: in.Handle, Password: in.Password, IP: s.clientIP(r)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.setSession(w, r, l)
	s.setDevice(w, r, l)
	writeJSON(w, http.StatusCreated, me{User: l.User, CSRFToken: l.Session.CSRFToken})
}

func (s *Server) logIn(w http.ResponseWriter, r *http.Request) {
	var in logInRequest
	if !decode(w, r, &in) {
		return
	}
	var device string
	if c, err := r.Cookie(deviceCookie); err == nil {
		device = c.Value
	}
	l, err := s.cfg.Rooms.LogIn(r.Context(), rooms.LogIn{Login: in.Login, Password: in.Password, IP: s.clientIP(r), Device: device})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.setSession(w, r, l)
	s.setDevice(w, r, l)
	writeJSON(w, http.StatusOK, me{User: l.User, CSRFToken: l.Session.CSRFToken})
}

func (s *Server) logOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := s.cfg.Rooms.LogOut(r.Context(), c.Value); err != nil && !errors.Is(err, rooms.ErrUnauthorized) {
			s.fail(w, r, err)
			return
		}
	}
	s.clearSession(w, r)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) whoAmI(w http.ResponseWriter, r *http.Request) {
	u, sess := userOf(r), sessionOf(r)
	if u == nil {
		if err := authErrOf(r); err != nil {
			s.fail(w, r, err)
			return
		}
		writeAPIError(w, http.StatusUnauthorized, "unauthorized", "", "not signed in")
		return
	}
	if tok := tokenOf(r); tok != nil {
		writeJSON(w, http.StatusOK, me{User: *u, Token: tok})
		return
	}
	writeJSON(w, http.StatusOK, me{User: *u, CSRFToken: sess.CSRFToken})
}

// requireUser answers 401 unless the request is signed in.
func (s *Server) requireUser(w http.ResponseWriter, r *http.Request) (rooms.User, bool) {
	u := userOf(r)
	if u == nil {
		if err := authErrOf(r); err != nil {
			s.fail(w, r, err)
			return rooms.User{}, false
		}
		writeAPIError(w, http.StatusUnauthorized, "unauthorized", "", "sign in first")
		return rooms.User{}, false
	}
	return *u, true
}
