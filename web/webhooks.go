package web

import (
	"errors"
	"net/http"

	"onair/rooms"
	"onair/rooms/audit"
	"onair/rooms/webhook"
)

// webhookRoom resolves the signed-in user and the room of a webhook request, and checks
// that the user may manage the room's webhooks: its owner or an admin.
func (s *Server) webhookRoom(w http.ResponseWriter, r *http.Request) (audit.Actor, webhook.Room, bool) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return audit.Actor{}, webhook.Room{}, false
	}
	if s.cfg.Webhooks == nil {
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "", "webhooks are not configured")
		return audit.Actor{}, webhook.Room{}, false
	}
	room, ok := s.admittedRoom(w, r)
	if !ok {
		return audit.Actor{}, webhook.Room{}, false
	}
	if !room.CanEdit(u) {
		writeAPIError(w, http.StatusForbidden, "forbidden", "", "only the room's owner or an admin manages its webhooks")
		return audit.Actor{}, webhook.Room{}, false
	}
	return audit.Actor{ID: u.ID, Handle: u.Handle, Admin: u.Admin}, webhook.Room{ID: room.ID, Slug: room.Slug, Title: room.Title}, true
}

// listWebhooks serves GET /api/v1/rooms/{slug}/webhooks: {"webhooks": [webhook.Webhook…]},
// never their secrets.
func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	_, room, ok := s.webhookRoom(w, r)
	if !ok {
		return
	}
	hooks, err := s.cfg.Webhooks.Webhooks(r.Context(), room.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, webhookList{Webhooks: hooks, Events: webhook.RoomEventTypes})
}

// webhookList is a room's webhooks, oldest first.
type webhookList struct {
	Webhooks []webhook.Webhook `json:"webhooks"`
	// Events are the event types a room's webhook may subscribe to.
	Events []string `json:"events"`
}

// createWebhookRequest is POST /api/v1/rooms/{slug}/webhooks.
type createWebhookRequest struct {
	URL string `json:"url"`
	// Format is json (default) or slack.
	Format webhook.Format `json:"format"`
	// Events default to every event a room's webhook takes.
	Events []string `json:"events"`
}

// createWebhookResponse carries the webhook's signing secret: the only time it is shown.
type createWebhookResponse struct {
	Webhook webhook.Webhook `json:"webhook"`
	Secret  string          `json:"secret"`
}

// updateWebhookRequest is PATCH /api/v1/rooms/{slug}/webhooks/{id}: the fields to change.
type updateWebhookRequest struct {
	URL    *string         `json:"url"`
	Format *webhook.Format `json:"format"`
	Events *[]string       `json:"events"`
}

// createWebhook serves POST /api/v1/rooms/{slug}/webhooks {"url", "format", "events"}:
// 201 {"webhook": {…}, "secret": "whsec_…"}, the only time the secret is shown.
func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	actor, room, ok := s.webhookRoom(w, r)
	if !ok {
		return
	}
	var in createWebhookRequest
	if !decode(w, r, &in) {
		return
	}
	hook, secret, err := s.cfg.Webhooks.CreateWebhook(r.Context(), actor, room, webhook.NewWebhook{URL: in.URL, Format: in.Format, Events: in.Events})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, createWebhookResponse{hook, secret})
}

// updateWebhook serves PATCH /api/v1/rooms/{slug}/webhooks/{id}.
func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) {
	actor, room, ok := s.webhookRoom(w, r)
	if !ok {
		return
	}
	var in updateWebhookRequest
	if !decode(w, r, &in) {
		return
	}
	up := webhook.WebhookUpdate{URL: in.URL, Format: in.Format}
	if in.Events != nil {
		up.Events = *in.Events
		if up.Events == nil {
			up.Events = []string{} // null: every event, as at creation
		}
	}
	hook, err := s.cfg.Webhooks.UpdateWebhook(r.Context(), actor, room, r.PathValue("id"), up)
	s.respond(w, r, http.StatusOK, hook, err)
}

// testWebhook serves POST /api/v1/rooms/{slug}/webhooks/{id}/test: 202 with the test
// event's delivery, which the delivery log then follows.
func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request) {
	actor, room, ok := s.webhookRoom(w, r)
	if !ok {
		return
	}
	d, err := s.cfg.Webhooks.SendTest(r.Context(), actor, room, r.PathValue("id"))
	s.respond(w, r, http.StatusAccepted, d, err)
}

// redeliverRoomDelivery serves POST
// /api/v1/rooms/{slug}/webhooks/{id}/deliveries/{delivery}/redeliver: 202 with the new
// delivery.
func (s *Server) redeliverRoomDelivery(w http.ResponseWriter, r *http.Request) {
	actor, room, ok := s.webhookRoom(w, r)
	if !ok {
		return
	}
	d, err := s.cfg.Webhooks.Redeliver(r.Context(), actor, webhook.Redelivery{
		DeliveryID: r.PathValue("delivery"), RoomID: room.ID, WebhookID: r.PathValue("id"),
	})
	s.respond(w, r, http.StatusAccepted, d, err)
}

// redeliverDelivery serves POST /api/v1/admin/webhooks/deliveries/{delivery}/redeliver
// to admins: any delivery, the global webhook's included.
func (s *Server) redeliverDelivery(w http.ResponseWriter, r *http.Request) {
	u := viewerOf(r)
	if s.cfg.Webhooks == nil {
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "", "webhooks are not configured")
		return
	}
	d, err := s.cfg.Webhooks.Redeliver(r.Context(), audit.Actor{ID: u.ID, Handle: u.Handle, Admin: u.Admin},
		webhook.Redelivery{DeliveryID: r.PathValue("delivery")})
	s.respond(w, r, http.StatusAccepted, d, err)
}

// deleteWebhook serves DELETE /api/v1/rooms/{slug}/webhooks/{id}: 204.
func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	actor, room, ok := s.webhookRoom(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Webhooks.DeleteWebhook(r.Context(), actor, room, r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// webhookDeliveries serves GET /api/v1/rooms/{slug}/webhooks/{id}/deliveries
// ?status=&limit=&cursor=&bodies=true: the webhook's delivery log, newest first,
// {"deliveries": [webhook.Delivery…], "next": "<cursor>"}.
func (s *Server) webhookDeliveries(w http.ResponseWriter, r *http.Request) {
	_, room, ok := s.webhookRoom(w, r)
	if !ok {
		return
	}
	hook, err := s.cfg.Webhooks.GetWebhook(r.Context(), room.ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.deliveries(w, r, webhook.DeliveryQuery{WebhookID: hook.ID, RoomID: room.ID})
}

// adminDeliveries serves GET /api/v1/admin/webhooks/deliveries
// ?webhook=<id|global>&room=<slug or id>&status=&limit=&cursor=&bodies=true to admins:
// every webhook's delivery log, the global one's included.
func (s *Server) adminDeliveries(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.requireAdmin(w, r); !ok {
		return
	}
	if s.cfg.Webhooks == nil {
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "", "webhooks are not configured")
		return
	}
	q := webhook.DeliveryQuery{WebhookID: r.URL.Query().Get("webhook")}
	if v := r.URL.Query().Get("room"); v != "" {
		room, err := s.cfg.Rooms.GetRoom(r.Context(), v)
		switch {
		case err == nil:
			q.RoomID = room.ID
		case errors.Is(err, rooms.ErrNotFound):
			q.RoomID = v // a deleted room's id
		default:
			s.fail(w, r, err)
			return
		}
	}
	s.deliveries(w, r, q)
}

func (s *Server) deliveries(w http.ResponseWriter, r *http.Request, q webhook.DeliveryQuery) {
	limit, ok := queryInt(w, r, "limit")
	if !ok {
		return
	}
	v := r.URL.Query()
	q.Status, q.Limit, q.Cursor, q.Bodies = v.Get("status"), limit, v.Get("cursor"), v.Get("bodies") == "true"
	page, err := s.cfg.Webhooks.Deliveries(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
