package web

import (
	"net/http"

	"onair/rooms"
)

// What account holders do to their own account from the settings page. Only a browser
// session may (routes.go: browser): a leaked API token must not take the account over.

// passwordRequest is POST /api/v1/auth/password.
type passwordRequest struct {
	// CurrentPassword is "" for an account made by an external sign-in that has none yet.
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// deleteAccountRequest is POST /api/v1/auth/account/delete: the account's handle, typed
// to confirm, and its password when it has one.
type deleteAccountRequest struct {
	Handle   string `json:"handle"`
	Password string `json:"password"`
}

// sessionToken is the request's session cookie, "" for none.
func sessionToken(r *http.Request) string {
	if c, err := r.Cookie(sessionCookie); err == nil {
		return c.Value
	}
	return ""
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	var in passwordRequest
	if !decode(w, r, &in) {
		return
	}
	err := s.cfg.Rooms.ChangePassword(r.Context(), viewerOf(r), rooms.PasswordChange{
		Current: in.CurrentPassword, New: in.NewPassword, KeepSession: sessionToken(r), IP: s.clientIP(r),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) signOutEverywhere(w http.ResponseWriter, r *http.Request) {
	if _, err := s.cfg.Rooms.RevokeSessions(r.Context(), viewerOf(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	s.clearSession(w, r)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteAccount(w http.ResponseWriter, r *http.Request) {
	var in deleteAccountRequest
	if !decode(w, r, &in) {
		return
	}
	err := s.cfg.Rooms.DeleteAccount(r.Context(), viewerOf(r), rooms.AccountDeletion{Handle: in.Handle, Password: in.Password, IP: s.clientIP(r)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Chat.Recheck() // its chat sockets close
	s.clearSession(w, r)
	w.WriteHeader(http.StatusNoContent)
}
