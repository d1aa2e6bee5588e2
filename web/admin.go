package web

import (
	"net/http"

	"onair/rooms"
	"onair/rooms/audit"
)

// withClientIP puts the client's address (clientIP: the peer, or X-Forwarded-For's last
// hop behind a trusted proxy) into the request's context, where the services read it
// for the audit trail (audit.ClientIP).
func (s *Server) withClientIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(audit.WithClientIP(r.Context(), s.clientIP(r))))
	})
}

// requireAdmin answers 401 to anonymous requests and 403 to signed-in non-admins.
func (s *Server) requireAdmin(w http.ResponseWriter, r *http.Request) (rooms.User, bool) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return u, false
	}
	if !u.Admin {
		writeAPIError(w, http.StatusForbidden, "forbidden", "", "admins only")
		return u, false
	}
	return u, true
}

// listAudit serves GET /api/v1/admin/audit?room=&actor=&action=&limit=&cursor= to admins:
// {"entries": [audit.Entry…], "next": "<cursor>"}, newest first.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.requireAdmin(w, r); !ok {
		return
	}
	if s.cfg.Audit == nil {
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "", "the audit trail is not configured")
		return
	}
	limit, ok := queryInt(w, r, "limit")
	if !ok {
		return
	}
	q := r.URL.Query()
	page, err := s.cfg.Audit.List(r.Context(), audit.Query{
		Room: q.Get("room"), Actor: q.Get("actor"), Action: q.Get("action"), Limit: limit, Cursor: q.Get("cursor"),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
