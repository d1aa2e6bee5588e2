package web

import (
	"net/http"
	"strconv"
	"strings"

	"onair/rooms"
	"onair/rooms/audit"
	"onair/rooms/uploads"
	"onair/rooms/webhook"
	"onair/web/golive"
)

// The HTTP API is one table (apiTable): each route's method and path, who may call it,
// the scope an API token needs for it, its parameters and the types of its request and
// answer. The same table registers the handlers (apiRoutes) and writes the OpenAPI
// document (openapi.go), so that the two cannot drift apart; a test holds every route
// the router serves against the document, and calls every documented route.

// access says who may call a route; the route's handler may narrow it further (a room's
// owner, its moderators).
type access int

const (
	// public routes answer anyone, signed in or not.
	public access = iota
	// signedIn routes need a session or an API token.
	signedIn
	// adminOnly routes need an admin's session, or an API token of an admin.
	adminOnly
)

// param is a path or query parameter, for the document.
type param struct {
	name, typ, doc string
}

// route is one operation of the HTTP API.
type route struct {
	method, path string
	tag          string
	summary      string
	doc          string // more, when the summary is not enough
	access       access
	// browser routes refuse API tokens: what only a browser does (sessions) or a token
	// must never do (make tokens, change the password, delete the account).
	browser bool
	// scope is what an API token needs to call the route ("" for none: any token).
	scope rooms.Scope
	query []param
	// in is a value of the JSON body's type, out of the JSON answer's (nil: none).
	in, out any
	// status is the success status (default 200, or 204 without out).
	status int
	// media is the type of an answer that is not JSON ("text/plain", an HLS playlist), or
	// "redirect" or "websocket".
	media string
	h     http.HandlerFunc
}

// router is the API's ServeMux, which only this type registers on: every pattern it
// serves is remembered, for the test that holds them against the document.
type router struct {
	mux      *http.ServeMux
	patterns []string
}

func newRouter() *router { return &router{mux: http.NewServeMux()} }

func (rt *router) handle(pattern string, h http.Handler) {
	rt.mux.Handle(pattern, h)
	rt.patterns = append(rt.patterns, pattern)
}

// fallback answers requests that match no route, marked so that tests tell them apart
// from a handler's own 404 (a room that does not exist).
func (rt *router) fallback(h http.HandlerFunc) {
	rt.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(noRouteHeader, "1")
		h(w, r)
	})
}

// noRouteHeader marks the answers of requests that no route matched.
const noRouteHeader = "X-Onair-No-Route"

// Common query parameters.
var (
	pLimit  = param{"limit", "integer", "page size"}
	pCursor = param{"cursor", "string", "the next cursor of the previous page"}
)

// Tags, in the order the document lists them.
var tags = []struct{ name, doc string }{
	{"auth", "accounts, sessions and API tokens"},
	{"rooms", "rooms, stream keys, moderators, invitations, player links"},
	{"broadcasts", "past broadcasts and their recordings"},
	{"chat", "chat history and moderation; the socket's protocol is in /api/v1/asyncapi.json"},
	{"webhooks", "a room's webhooks and their delivery logs"},
	{"admin", "for admins: users, rooms, the audit trail, every delivery log, server health"},
	{"media", "HLS, replays and health checks, outside /api/v1"},
}

// apiTable is every route of /api/v1.
func (s *Server) apiTable() []route {
	const (
		room = "/api/v1/rooms/{slug}"
		chat = room + "/chat"
		hook = room + "/webhooks/{id}"
	)
	sc := rooms.ScopeRoomsRead
	return []route{
		// Accounts and sessions.
		{method: "POST", path: "/api/v1/auth/signup", tag: "auth", summary: "Sign up (the first account is the admin) and start a session", browser: true, in: signUpRequest{}, out: me{}, status: 201, h: s.signUp},
		{method: "POST", path: "/api/v1/auth/login", tag: "auth", summary: "Log in with an email or handle and a password", browser: true, in: logInRequest{}, out: me{}, h: s.logIn},
		{method: "POST", path: "/api/v1/auth/logout", tag: "auth", summary: "End this browser's session", browser: true, h: s.logOut},
		{method: "GET", path: "/api/v1/auth/me", tag: "auth", summary: "Who is signed in, with the CSRF token of the session (or the API token used)", access: signedIn, out: me{}, h: s.whoAmI},
		{method: "GET", path: oidcCookiePath + "login", tag: "auth", summary: "Sign in through the OpenID Connect provider (browser redirect)", browser: true,
			query: []param{{"next", "string", "local path to return to"}, {"link", "string", "1: link the provider to the signed-in account"}}, media: "redirect", h: s.oidcLogin},
		{method: "GET", path: oidcCallbackPath, tag: "auth", summary: "The provider's redirect back (browser)", browser: true, media: "redirect", h: s.oidcCallback},
		{method: "POST", path: "/api/v1/auth/password", tag: "auth", summary: "Change the password; the account's other sessions end", access: signedIn, browser: true, in: passwordRequest{}, h: s.changePassword},
		{method: "DELETE", path: "/api/v1/auth/sessions", tag: "auth", summary: "Sign out everywhere: every session of the account ends, this one included", access: signedIn, browser: true, h: s.signOutEverywhere},
		{method: "POST", path: "/api/v1/auth/account/delete", tag: "auth", summary: "Delete the account with its rooms, broadcasts, recordings and tokens (what is live stops first)",
			doc: "Confirm with the account's handle and, when it has one, its password.", access: signedIn, browser: true, in: deleteAccountRequest{}, h: s.deleteAccount},
		{method: "GET", path: "/api/v1/tokens", tag: "auth", summary: "The account's API tokens (never their secrets) and the scopes there are", access: signedIn, browser: true, out: tokenList{}, h: s.listTokens},
		{method: "POST", path: "/api/v1/tokens", tag: "auth", summary: "Make an API token: its secret is in this answer only",
			doc: "Send it as Authorization: Bearer <secret>. admin:* scopes are for admins.", access: signedIn, browser: true, in: createTokenRequest{}, out: createTokenResponse{}, status: 201, h: s.createToken},
		{method: "DELETE", path: "/api/v1/tokens/{id}", tag: "auth", summary: "Revoke an API token: it stops working at once", access: signedIn, browser: true, h: s.revokeToken},

		// Rooms.
		{method: "GET", path: "/api/v1/rooms", tag: "rooms", summary: "List rooms, live first: public ones, or one's own with owner=me", scope: sc,
			query: []param{{"q", "string", "title contains"}, {"live", "boolean", "live rooms only"}, {"owner", "string", "me: the caller's rooms, of every visibility"}, pLimit, pCursor},
			out:   roomList{}, h: s.listRooms},
		{method: "POST", path: "/api/v1/rooms", tag: "rooms", summary: "Create a room: its stream key is in this answer only", access: signedIn, scope: rooms.ScopeRoomsWrite,
			in: createRoomRequest{}, out: createRoomResponse{}, status: 201, h: s.createRoom},
		{method: "GET", path: room, tag: "rooms", summary: "A room, as the caller may see it", scope: sc, out: roomView{}, h: s.getRoom},
		{method: "PATCH", path: room, tag: "rooms", summary: "Edit a room (owner or admin)", access: signedIn, scope: rooms.ScopeRoomsWrite, in: updateRoomRequest{}, out: roomView{}, h: s.updateRoom},
		{method: "DELETE", path: room, tag: "rooms", summary: "Delete a room with its broadcasts and recordings; what is live stops (owner, or an admin taking it down)",
			access: signedIn, scope: rooms.ScopeRoomsWrite, h: s.deleteRoom},
		{method: "POST", path: room + "/stream-key", tag: "rooms", summary: "Rotate the stream key: the new one is in this answer only; a live publish stops",
			access: signedIn, scope: rooms.ScopeRoomsWrite, out: streamKeyResponse{}, h: s.rotateKey},
		{method: "POST", path: room + "/moderators", tag: "rooms", summary: "Add a moderator", access: signedIn, scope: rooms.ScopeRoomsWrite, in: handleRequest{}, out: roomView{}, h: s.addModerator},
		{method: "DELETE", path: room + "/moderators/{handle}", tag: "rooms", summary: "Remove a moderator", access: signedIn, scope: rooms.ScopeRoomsWrite, out: roomView{}, h: s.removeModerator},
		{method: "GET", path: room + "/viewers", tag: "rooms", summary: "A private room's invited viewers", access: signedIn, scope: sc, out: invitedList{}, h: s.listInvited},
		{method: "POST", path: room + "/viewers", tag: "rooms", summary: "Invite a viewer to a private room", access: signedIn, scope: rooms.ScopeRoomsWrite, in: handleRequest{}, out: roomView{}, h: s.inviteViewer},
		{method: "DELETE", path: room + "/viewers/{handle}", tag: "rooms", summary: "Revoke an invitation: the viewer's chat closes, their player stops within minutes",
			access: signedIn, scope: rooms.ScopeRoomsWrite, out: roomView{}, h: s.revokeViewer},
		{method: "POST", path: room + "/playback", tag: "rooms", summary: "A private room's page: sets its playback cookie (5 min)", scope: sc, out: playbackAnswer{}, h: s.playbackSession},
		{method: "POST", path: room + "/playback-tokens", tag: "rooms", summary: "A URL token for external players of a private room, 60 s to 7 days",
			access: signedIn, scope: rooms.ScopeRoomsWrite, in: urlTokenRequest{}, out: urlTokenResponse{}, status: 201, h: s.urlToken},
		{method: "GET", path: room + "/obs-config", tag: "rooms", summary: "A fixed OBS multitrack video configuration for the owner to paste into Config Override (JSON) (OBS 32.2 and later)",
			doc:    "The ladder POST /api/v1/obs/config would give that machine, within the room's cap. hardware: " + strings.Join(golive.Hardware, ", ") + " (default nvidia); output: 1080p60 (default), 1080p30, 720p60, 720p30.",
			access: signedIn, scope: sc, query: []param{{"hardware", "string", "the streamer's encoder"}, {"output", "string", "OBS's output resolution and frame rate"}}, out: golive.Config{}, h: s.roomOBSConfig},
		{method: "GET", path: room + "/health", tag: "rooms", summary: "Live health for the owner: bitrate, fps, codecs, viewers, recording, why a publish was refused", access: signedIn, scope: sc, out: roomHealth{}, h: s.roomHealth},

		// Broadcasts.
		{method: "GET", path: room + "/broadcasts", tag: "broadcasts", summary: "A room's past broadcasts, newest first", scope: rooms.ScopeBroadcastsRead,
			query: []param{pLimit, pCursor}, out: broadcastList{}, h: s.listBroadcasts},
		{method: "GET", path: "/api/v1/broadcasts/{id}", tag: "broadcasts", summary: "A broadcast, by its public id", scope: rooms.ScopeBroadcastsRead, out: broadcastView{}, h: s.getBroadcast},
		{method: "DELETE", path: "/api/v1/broadcasts/{id}", tag: "broadcasts", summary: "Delete a past broadcast and its recording", access: signedIn, scope: rooms.ScopeBroadcastsWrite, h: s.deleteBroadcast},
		{method: "PATCH", path: "/api/v1/broadcasts/{id}", tag: "broadcasts", summary: "Change a past broadcast's title (a live one follows its room's stream_title)", access: signedIn, scope: rooms.ScopeBroadcastsWrite,
			in: broadcastPatch{}, out: broadcastView{}, h: s.retitleBroadcast},
		{method: "GET", path: "/api/v1/broadcasts/{id}/replay.m3u8", tag: "broadcasts", summary: "VOD HLS of the recording", scope: rooms.ScopeBroadcastsRead,
			query: []param{{"token", "string", "playback token (a private room's)"}}, media: "application/vnd.apple.mpegurl", h: s.replayPlaylist},
		{method: "GET", path: "/api/v1/broadcasts/{id}/download", tag: "broadcasts", summary: "Redirect to the recording's MP4", scope: rooms.ScopeBroadcastsRead,
			query: []param{{"token", "string", "playback token (a private room's)"}}, media: "redirect", h: s.download},
		{method: "GET", path: "/api/v1/broadcasts/{id}/chat", tag: "broadcasts", summary: "The broadcast's chat by time, oldest first, each message with its offset from the start",
			doc:   "Deleted messages and those of users banned during the broadcast are left out. Readable by whoever may watch the broadcast.",
			scope: rooms.ScopeChatRead, query: []param{{"from", "integer", "milliseconds into the broadcast (default 0)"}, {"to", "integer", "milliseconds into the broadcast, excluded (default: its end)"},
				pLimit, {"cursor", "string", "the next cursor of the previous page (instead of from)"}}, out: replayChat{}, h: s.broadcastChat},

		// Clips.
		{method: "POST", path: room + "/clips", tag: "broadcasts", summary: "Clip the last 5 to 60 s of the live stream",
			doc:    "Cut from the DVR window of the node that ingests the stream (another node sends the request on to it), on key frames (so up to a segment longer or behind live); 409 when the room is not live. At most " + strconv.Itoa(rooms.MaxClipsPerHour) + " clips per user an hour.",
			access: signedIn, scope: rooms.ScopeBroadcastsWrite, in: clipRequest{}, out: clipView{}, status: 201, h: s.createLiveClip},
		{method: "GET", path: room + "/clips", tag: "broadcasts", summary: "A room's clips, newest first", scope: rooms.ScopeBroadcastsRead,
			query: []param{pLimit, pCursor}, out: clipList{}, h: s.listClips},
		{method: "POST", path: "/api/v1/broadcasts/{id}/clips", tag: "broadcasts", summary: "Clip 5 to 60 s of a past broadcast's recording, ending at at_ms",
			access: signedIn, scope: rooms.ScopeBroadcastsWrite, in: replayClipRequest{}, out: clipView{}, status: 201, h: s.createReplayClip},
		{method: "GET", path: "/api/v1/clips/{id}", tag: "broadcasts", summary: "A clip", scope: rooms.ScopeBroadcastsRead, out: clipView{}, h: s.getClip},
		{method: "DELETE", path: "/api/v1/clips/{id}", tag: "broadcasts", summary: "Delete a clip (its maker, the room's owner and moderators, admins)",
			access: signedIn, scope: rooms.ScopeBroadcastsWrite, h: s.deleteClip},
		{method: "GET", path: "/api/v1/clips/{id}/clip.m3u8", tag: "broadcasts", summary: "VOD HLS of a clip (a private room's needs its playback cookie or ?token=)", scope: rooms.ScopeBroadcastsRead,
			query: []param{{"token", "string", "playback token (a private room's)"}}, media: "application/vnd.apple.mpegurl", h: s.clipPlaylist},

		// Uploads.
		{method: "POST", path: room + "/uploads", tag: "broadcasts", summary: "Start uploading a video (MP4 or MOV) as a past broadcast: presigned URLs for its parts",
			doc:    "PUT each part's bytes to its url (exactly its size; any order, in parallel, again on failure), then complete. 413 past uploads.max_bytes; 409 when the room has uploads.max_pending unfinished uploads. Owner or admin.",
			access: signedIn, scope: rooms.ScopeBroadcastsWrite, in: uploadRequest{}, out: uploads.View{}, status: 201, h: s.createUpload},
		{method: "GET", path: room + "/uploads/{id}", tag: "broadcasts", summary: "An upload: its state, and while uploading the parts the store holds and fresh URLs for the others (resume)",
			access: signedIn, scope: rooms.ScopeBroadcastsWrite, out: uploads.View{}, h: s.getUpload},
		{method: "POST", path: room + "/uploads/{id}/complete", tag: "broadcasts", summary: "Complete an upload: the file is checked and remuxed, then becomes a past broadcast (state ready, broadcast_id) or is refused with a reason",
			doc: "409 names the parts not uploaded yet.", access: signedIn, scope: rooms.ScopeBroadcastsWrite, out: uploads.View{}, status: 202, h: s.completeUpload},
		{method: "DELETE", path: room + "/uploads/{id}", tag: "broadcasts", summary: "Cancel an upload in progress; its parts are deleted",
			access: signedIn, scope: rooms.ScopeBroadcastsWrite, h: s.abortUpload},

		// Chat.
		{method: "GET", path: chat, tag: "chat", summary: "The chat websocket (protocol: /api/v1/asyncapi.json); read-only without a session or chat:write",
			scope: rooms.ScopeChatRead, media: "websocket", h: s.chatSocket},
		{method: "GET", path: chat + "/history", tag: "chat", summary: "The last messages, oldest first; next_before pages back to older ones", scope: rooms.ScopeChatRead,
			query: []param{pLimit, {"before", "string", "a message id (next_before of the previous page): the messages just older than it"}}, out: messageList{}, h: s.chatHistory},
		{method: "DELETE", path: chat + "/messages/{id}", tag: "chat", summary: "Delete a message", access: signedIn, scope: rooms.ScopeChatModerate, h: s.deleteMessage},
		{method: "POST", path: chat + "/timeouts", tag: "chat", summary: "Time a user out (1 s to 14 days)", access: signedIn, scope: rooms.ScopeChatModerate, in: timeoutRequest{}, h: s.timeoutUser},
		{method: "GET", path: chat + "/bans", tag: "chat", summary: "The bans and timeouts in force", access: signedIn, scope: rooms.ScopeChatModerate, out: banList{}, h: s.listBans},
		{method: "POST", path: chat + "/bans", tag: "chat", summary: "Ban a user", access: signedIn, scope: rooms.ScopeChatModerate, in: banRequest{}, h: s.banUser},
		{method: "DELETE", path: chat + "/bans/{handle}", tag: "chat", summary: "Lift a user's ban or timeout", access: signedIn, scope: rooms.ScopeChatModerate, h: s.unbanUser},
		{method: "POST", path: chat + "/purges", tag: "chat", summary: "Delete a user's recent messages (up to a day back)", access: signedIn, scope: rooms.ScopeChatModerate,
			in: purgeRequest{}, out: purgeResponse{}, h: s.purgeUser},
		{method: "PUT", path: chat + "/slow-mode", tag: "chat", summary: "Set slow mode (0 turns it off)", access: signedIn, scope: rooms.ScopeChatModerate, in: slowModeRequest{}, h: s.slowMode},
		{method: "GET", path: chat + "/moderation", tag: "chat", summary: "The moderation log, newest first", access: signedIn, scope: rooms.ScopeChatModerate, query: []param{pLimit}, out: actionList{}, h: s.moderationLog},

		// Webhooks.
		{method: "GET", path: room + "/webhooks", tag: "webhooks", summary: "A room's webhooks (never their secrets)", access: signedIn, scope: rooms.ScopeWebhooksRead, out: webhookList{}, h: s.listWebhooks},
		{method: "POST", path: room + "/webhooks", tag: "webhooks", summary: "Add a webhook: its signing secret is in this answer only", access: signedIn, scope: rooms.ScopeWebhooksWrite,
			in: createWebhookRequest{}, out: createWebhookResponse{}, status: 201, h: s.createWebhook},
		{method: "PATCH", path: hook, tag: "webhooks", summary: "Edit a webhook's URL, format or events", access: signedIn, scope: rooms.ScopeWebhooksWrite, in: updateWebhookRequest{}, out: webhook.Webhook{}, h: s.updateWebhook},
		{method: "DELETE", path: hook, tag: "webhooks", summary: "Delete a webhook; its pending deliveries are canceled", access: signedIn, scope: rooms.ScopeWebhooksWrite, h: s.deleteWebhook},
		{method: "POST", path: hook + "/test", tag: "webhooks", summary: "Send the webhook a webhook.test event", access: signedIn, scope: rooms.ScopeWebhooksWrite, out: webhook.Delivery{}, status: 202, h: s.testWebhook},
		{method: "GET", path: hook + "/deliveries", tag: "webhooks", summary: "The webhook's delivery log, newest first", access: signedIn, scope: rooms.ScopeWebhooksRead,
			query: []param{{"status", "string", "pending, delivered, failed or canceled"}, {"bodies", "boolean", "include what was posted"}, pLimit, pCursor},
			out:   webhook.DeliveryPage{}, h: s.webhookDeliveries},
		{method: "POST", path: hook + "/deliveries/{delivery}/redeliver", tag: "webhooks", summary: "Send a failed (or delivered) delivery again",
			access: signedIn, scope: rooms.ScopeWebhooksWrite, out: webhook.Delivery{}, status: 202, h: s.redeliverRoomDelivery},

		// Admins.
		{method: "GET", path: "/api/v1/admin/users", tag: "admin", summary: "Accounts, newest first", access: adminOnly, scope: rooms.ScopeAdminRead,
			query: []param{{"q", "string", "handle or email contains"}, {"disabled", "boolean", "disabled accounts only"}, {"admins", "boolean", "admins only"}, pLimit, pCursor},
			out:   rooms.UserPage{}, h: s.listUsers},
		{method: "PATCH", path: "/api/v1/admin/users/{user}", tag: "admin", summary: "Disable or enable an account, make it an admin or not",
			doc:    "Disabling ends the account's sessions at once, refuses its API tokens, and stops its live publishes on every node within a heartbeat.",
			access: adminOnly, scope: rooms.ScopeAdminWrite, in: userUpdateRequest{}, out: rooms.User{}, h: s.updateUser},
		{method: "GET", path: "/api/v1/admin/rooms", tag: "admin", summary: "Every room, whatever its visibility, live first", access: adminOnly, scope: rooms.ScopeAdminRead,
			query: []param{{"q", "string", "title or slug contains"}, {"live", "boolean", "live rooms only"}, pLimit, pCursor}, out: roomList{}, h: s.adminRooms},
		{method: "DELETE", path: "/api/v1/admin/rooms/{slug}", tag: "admin", summary: "Take a room down: it is deleted with its broadcasts and recordings; what is live stops on every node",
			access: adminOnly, scope: rooms.ScopeAdminWrite, h: s.deleteRoom},
		{method: "GET", path: "/api/v1/admin/audit", tag: "admin", summary: "The audit trail, newest first", access: adminOnly, scope: rooms.ScopeAdminRead,
			query: []param{{"room", "string", "a room's slug or id"}, {"actor", "string", "a user's handle or id"}, {"action", "string", `an action ("chat.ban") or a family ("chat.*")`}, pLimit, pCursor},
			out:   audit.Page{}, h: s.listAudit},
		{method: "GET", path: "/api/v1/admin/webhooks/deliveries", tag: "admin", summary: "Every webhook's delivery log, the global one's included", access: adminOnly, scope: rooms.ScopeAdminRead,
			query: []param{{"webhook", "string", "a webhook's id, or global"}, {"room", "string", "a room's slug or id"}, {"status", "string", "pending, delivered, failed or canceled"},
				{"bodies", "boolean", "include what was posted"}, pLimit, pCursor},
			out: webhook.DeliveryPage{}, h: s.adminDeliveries},
		{method: "POST", path: "/api/v1/admin/webhooks/deliveries/{delivery}/redeliver", tag: "admin", summary: "Send any failed (or delivered) delivery again",
			access: adminOnly, scope: rooms.ScopeAdminWrite, out: webhook.Delivery{}, status: 202, h: s.redeliverDelivery},
		{method: "GET", path: "/api/v1/admin/health", tag: "admin", summary: "Server health: the cluster's nodes, live rooms, recording backlog, webhooks", access: adminOnly, scope: rooms.ScopeAdminRead,
			out: healthView{}, h: s.serverHealth},

		// The documents themselves.
		{method: "GET", path: "/api/v1/openapi.json", tag: "auth", summary: "This document (OpenAPI 3.1)", media: "application/json", h: s.serveOpenAPI},
		{method: "GET", path: "/api/v1/asyncapi.json", tag: "chat", summary: "The chat socket's protocol (AsyncAPI 3.0)", media: "application/json", h: s.serveAsyncAPI},
	}
}

// mediaTable is what the document says of the routes that clients of the API use outside
// its guards: HLS, replays, health checks, and OBS's multitrack video configuration (OBS
// has neither a session nor an API token, and sends no Origin). They are registered on the
// server's own mux.
func (s *Server) mediaTable() []route {
	rs := []route{
		{method: "", path: "/live/{name}/{file}", tag: "media", summary: "Live HLS of a room (by slug while public, else playback id) or a configured stream",
			doc:   "Playlists, parts, segments and init files; LL-HLS blocking requests with _HLS_msn/_HLS_part. A private room's need its playback cookie or ?token=.",
			query: []param{{"token", "string", "playback token (private rooms)"}}, media: "application/vnd.apple.mpegurl", h: s.liveHLS},
		{method: "", path: "/live/{name}/t/{token}/{file}", tag: "media", summary: "Live HLS of a private room for an external player, with its URL token in the path",
			doc:   "What POST /api/v1/rooms/{slug}/playback-tokens hands out as hls_url: the playlists' relative URIs resolve under this path, so every request carries the token.",
			media: "application/vnd.apple.mpegurl", h: s.liveHLS},
		{method: "GET", path: "/vod/{ref}/{id}/index.m3u8", tag: "media", summary: "A private room's replay playlist", media: "application/vnd.apple.mpegurl", h: s.replayPlaylist},
		{method: "GET", path: "/vod/{ref}/{id}/media.mp4", tag: "media", summary: "A private room's recording (redirect to a short-lived URL)", media: "redirect", h: s.replayMedia},
		{method: "GET", path: "/vod/{ref}/clips/{id}/index.m3u8", tag: "media", summary: "A private room's clip playlist", media: "application/vnd.apple.mpegurl", h: s.clipPlaylist},
		{method: "GET", path: "/vod/{ref}/{id}/download", tag: "media", summary: "A private room's recording as a download (redirect)", media: "redirect", h: s.download},
		{method: "POST", path: obsConfigPath, tag: "rooms", summary: "OBS multitrack video (Enhanced Broadcasting): the renditions to encode, for the room of the stream key",
			doc: "OBS posts its machine and settings (the GoLive API of Amazon IVS and Twitch) with the room's stream key in authentication; the answer is a ladder for that hardware " +
				"within the room's max_ladder_kbps (else rtmp.max_ladder_kbps) and OBS's Maximum Streaming Bandwidth, audio included, every track with 1 s key frames, and the RTMP(S) ingest. " +
				"A missing key answers 401, an unknown one 403, too many unknown keys from an address 429, a body over " + strconv.Itoa(golive.MaxRequestBytes) + " bytes 413; " +
				"refusals carry status.result \"error\" and a message in status.html_en_us, with HTTP 200 to OBS itself (User-Agent obs-basic), which shows only 2xx bodies.",
			in: golive.Request{}, out: golive.Config{}, h: s.obsConfig},
		{method: "GET", path: "/healthz", tag: "media", summary: "Alive", media: "text/plain", h: healthz},
		{method: "GET", path: "/readyz", tag: "media", summary: "Ready: MongoDB and storage reachable, listeners up (503 names what is not)", media: "text/plain", h: s.readyz},
	}
	if s.cfg.Storage != nil {
		rs = append(rs, route{method: "", path: "/storage/{key...}", tag: "media",
			summary: "Recordings in the local storage backend, at the signed URLs the API hands out (GET, HEAD; PUT for uploads)",
			doc:     "GET and HEAD answer any origin (CORS, OPTIONS preflight included), so that players on other sites play replays.",
			media:   "application/octet-stream", h: storageCORS(s.cfg.Storage).ServeHTTP})
	}
	return rs
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// pattern is the route's ServeMux pattern.
func (rt route) pattern() string {
	if rt.method == "" {
		return rt.path
	}
	return rt.method + " " + rt.path
}

// guard enforces who may call the route before its handler runs: an API token needs the
// route's scope and is refused on session-only routes; signed-in and admin routes answer
// 401 or 403 to others.
func (s *Server) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := tokenOf(r); tok != nil {
			if rt.browser {
				writeAPIError(w, http.StatusForbidden, "forbidden", "", "this needs a browser session: API tokens may not do it")
				return
			}
			if rt.scope != "" && !tok.Allows(rt.scope) {
				writeAPIError(w, http.StatusForbidden, "forbidden", "", "this API token lacks the scope "+string(rt.scope))
				return
			}
		}
		switch rt.access {
		case signedIn:
			if _, ok := s.requireUser(w, r); !ok {
				return
			}
		case adminOnly:
			if _, ok := s.requireAdmin(w, r); !ok {
				return
			}
		}
		rt.h(w, r)
	})
}

// pathParams are the {names} of a path, in order.
func pathParams(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(seg, "{"), "}"))
		}
	}
	return out
}
