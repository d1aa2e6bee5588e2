package web

import (
	"net/http"
	"net/url"
)

// The account settings page (password, sessions, API tokens, deleting the account) and
// the admin console (users, rooms, audit trail, webhook deliveries, server health). Both
// are shells that their scripts (web/ui/src/lib/settings.js, admin.js) fill from the API.

// signedInPage renders tmpl for a signed-in user, or sends others to the login page.
func (s *Server) signedInPage(w http.ResponseWriter, r *http.Request, tmpl, title string) {
	if s.cfg.Rooms == nil {
		s.message(w, r, http.StatusServiceUnavailable, title+" unavailable", "Accounts need MongoDB: set mongo.uri in the config.")
		return
	}
	u := userOf(r)
	if u == nil {
		if err := authErrOf(r); err != nil {
			s.pageError(w, r, "page", err)
			return
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
		return
	}
	if tmpl == "admin" && !u.Admin {
		s.message(w, r, http.StatusForbidden, "Admins only", "The admin console is for onair's admins.")
		return
	}
	p := pageData{Title: title, Page: tmpl}
	if s.cfg.OIDC != nil {
		p.SignInWith = s.cfg.OIDCName
	}
	s.render(w, r, http.StatusOK, tmpl, p)
}

func (s *Server) settingsPage(w http.ResponseWriter, r *http.Request) {
	s.signedInPage(w, r, "settings", "Settings")
}

func (s *Server) adminPage(w http.ResponseWriter, r *http.Request) {
	s.signedInPage(w, r, "admin", "Admin console")
}
