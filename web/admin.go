package web

import (
	"context"
	"net/http"
	"time"

	"onair/rooms"
	"onair/rooms/audit"
	"onair/rooms/cluster"
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

// userUpdateRequest is PATCH /api/v1/admin/users/{user}: what to change.
type userUpdateRequest struct {
	Disabled *bool `json:"disabled"`
	Admin    *bool `json:"admin"`
}

// listUsers serves GET /api/v1/admin/users?q=&disabled=&admins=&limit=&cursor=.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit")
	if !ok {
		return
	}
	q := r.URL.Query()
	page, err := s.cfg.Rooms.ListUsers(r.Context(), viewerOf(r), rooms.UserQuery{
		Search: q.Get("q"), Disabled: q.Get("disabled") == "true", Admins: q.Get("admins") == "true", Limit: limit, Cursor: q.Get("cursor"),
	})
	s.respond(w, r, http.StatusOK, page, err)
}

// updateUser serves PATCH /api/v1/admin/users/{user} (a handle or an id). A disabled
// account's chat sockets close at once on this node, within chat's admission interval on
// the others.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	var in userUpdateRequest
	if !decode(w, r, &in) {
		return
	}
	u, err := s.cfg.Rooms.UpdateUser(r.Context(), viewerOf(r), r.PathValue("user"), rooms.UserUpdate{Disabled: in.Disabled, Admin: in.Admin})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if u.Disabled {
		s.cfg.Chat.Recheck()
	}
	writeJSON(w, http.StatusOK, u)
}

// adminRooms serves GET /api/v1/admin/rooms?q=&live=&limit=&cursor=: every room.
func (s *Server) adminRooms(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit")
	if !ok {
		return
	}
	q := r.URL.Query()
	page, err := s.cfg.Rooms.ListRooms(r.Context(), viewerOf(r), rooms.RoomQuery{
		All: true, Search: q.Get("q"), LiveOnly: q.Get("live") == "true", Limit: limit, Cursor: q.Get("cursor"),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeRooms(w, r, page)
}

// ClusterNodes is the cluster's node registry as the admins' server health reads it;
// *cluster.Registry satisfies it.
type ClusterNodes interface {
	ID() string
	Nodes(ctx context.Context) ([]cluster.Node, error)
}

// healthView is GET /api/v1/admin/health.
type healthView struct {
	At time.Time `json:"at"`
	// Node is the node that answered; Nodes every node alive in the cluster.
	Node  string     `json:"node"`
	Nodes []nodeView `json:"nodes"`
	// Live are the rooms live now, anywhere (up to 100).
	Live []roomView `json:"live"`
	// Chat, Webhooks and Audit are the answering node's own figures.
	Chat     chatHealth     `json:"chat"`
	Webhooks webhookHealth  `json:"webhooks"`
	Audit    auditHealth    `json:"audit"`
	Problems []string       `json:"problems,omitempty"`
	Backlog  backlogView    `json:"backlog"`
	Streams  []streamHealth `json:"streams"`
}

// nodeView is one node of the cluster as its last heartbeat described it.
type nodeView struct {
	ID        string      `json:"id"`
	URL       string      `json:"url,omitempty"`
	Started   time.Time   `json:"started"`
	Heartbeat time.Time   `json:"heartbeat"`
	Streams   int         `json:"streams"`
	Viewers   int         `json:"viewers"`
	Backlog   backlogView `json:"backlog"`
}

// backlogView is what recordings hold on a node's disk, not yet in the object store.
type backlogView struct {
	Recordings   int   `json:"recordings"`
	BytesPending int64 `json:"bytes_pending"`
	PartsPending int   `json:"parts_pending"`
}

// streamHealth is a stream published on the answering node.
type streamHealth struct {
	Name      string    `json:"name"`
	Room      string    `json:"room_id,omitempty"`
	Since     time.Time `json:"since"`
	Bitrate   int64     `json:"bitrate"`
	Recording bool      `json:"recording"`
}

type chatHealth struct {
	Sockets int `json:"sockets"`
	Rooms   int `json:"rooms"`
}

type webhookHealth struct {
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	Dropped   uint64 `json:"dropped"`
	Queued    int    `json:"queued"`
	Pending   int    `json:"pending"`
}

type auditHealth struct {
	Queued  int    `json:"queued"`
	Dropped uint64 `json:"dropped"`
}

// serverHealth serves GET /api/v1/admin/health. What cannot be read is named in
// problems; the rest is answered anyway.
func (s *Server) serverHealth(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	h := healthView{At: now, Nodes: []nodeView{}, Live: []roomView{}, Streams: []streamHealth{}}
	if s.cfg.Cluster != nil {
		h.Node = s.cfg.Cluster.ID()
		nodes, err := s.cfg.Cluster.Nodes(r.Context())
		if err != nil {
			s.log.Warn("health: nodes not listed", "err", err)
			h.Problems = append(h.Problems, "the cluster's nodes cannot be read")
		}
		for _, n := range nodes {
			v := nodeView{ID: n.ID, URL: n.URL, Started: n.Started.UTC(), Heartbeat: n.Heartbeat.UTC(), Streams: len(n.Publishing),
				Backlog: backlogView{Recordings: n.Backlog.Recordings, BytesPending: n.Backlog.BytesPending, PartsPending: n.Backlog.PartsPending}}
			for _, vc := range n.Viewers {
				v.Viewers += vc.N
			}
			if n.ID == h.Node {
				h.Backlog = v.Backlog
			}
			h.Nodes = append(h.Nodes, v)
		}
	}
	if page, err := s.cfg.Rooms.ListRooms(r.Context(), viewerOf(r), rooms.RoomQuery{All: true, LiveOnly: true, Limit: 100}); err != nil {
		s.log.Warn("health: live rooms not listed", "err", err)
		h.Problems = append(h.Problems, "the live rooms cannot be read")
	} else {
		for _, room := range page.Rooms {
			h.Live = append(h.Live, s.roomView(r, room))
		}
	}
	for _, st := range s.cfg.Hub.Streams() {
		sh := streamHealth{Name: st.Name(), Room: st.Route().RoomID, Since: st.StartedAt().UTC(), Recording: st.Route().Record}
		if secs := now.Sub(st.StartedAt()).Seconds(); secs > 0 {
			sh.Bitrate = int64(float64(st.Stats().Bytes*8) / secs)
		}
		h.Streams = append(h.Streams, sh)
	}
	cs := s.cfg.Chat.Stats()
	h.Chat = chatHealth{Sockets: cs.Sockets, Rooms: cs.Rooms}
	if s.cfg.Webhooks != nil {
		ws := s.cfg.Webhooks.Stats()
		h.Webhooks = webhookHealth{Delivered: ws.Delivered, Failed: ws.Failed, Dropped: ws.Dropped, Queued: ws.Queued, Pending: ws.Pending}
	}
	if s.cfg.Audit != nil {
		h.Audit = auditHealth{Queued: s.cfg.Audit.Queued(), Dropped: s.cfg.Audit.Dropped()}
	}
	writeJSON(w, http.StatusOK, h)
}
