package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"onair/chat"
	"onair/rooms"
)

// chatRooms remembers what chat needs of recently seen rooms, so that viewers can still
// join a room's chat (and read it) while MongoDB is briefly away.
type chatRooms struct {
	mu    sync.Mutex
	rooms map[string]chat.Room
}

const maxChatRooms = 10_000

func (c *chatRooms) put(slug string, r chat.Room) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rooms) >= maxChatRooms {
		clear(c.rooms)
	}
	c.rooms[slug] = r
}

func (c *chatRooms) forget(ref string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.rooms, ref)
}

func (c *chatRooms) get(slug string) (chat.Room, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.rooms[slug]
	return r, ok
}

func chatRoomOf(room rooms.Room) chat.Room {
	r := chat.Room{ID: room.ID, Slug: room.Slug, Title: room.Title, OwnerID: room.Owner.ID, Stream: room.StreamName()}
	for _, m := range room.Moderators {
		r.Moderators = append(r.Moderators, m.ID)
	}
	return r
}

func chatUserOf(u *rooms.User) *chat.User {
	if u == nil {
		return nil
	}
	return &chat.User{ID: u.ID, Handle: u.Handle, Admin: u.Admin}
}

// chatRoom looks the room up (by slug or playback id) and checks that the user may be
// in it, falling back to the cache when the database is away: never for a private room,
// whose invitations cannot be checked then.
func (s *Server) chatRoom(w http.ResponseWriter, r *http.Request) (rooms.Room, chat.Room, bool) {
	ref := r.PathValue("slug")
	room, via, err := s.cfg.Rooms.FindRoom(r.Context(), ref)
	if err == nil {
		if err := s.admit(r, room, via); err != nil {
			s.fail(w, r, err)
			return rooms.Room{}, chat.Room{}, false
		}
		info := chatRoomOf(room)
		if room.Visibility == rooms.Private {
			s.chatRooms.forget(ref)
		} else {
			s.chatRooms.put(ref, info)
		}
		return room, info, true
	}
	if errors.Is(err, rooms.ErrUnavailable) {
		if info, ok := s.chatRooms.get(ref); ok {
			return rooms.Room{}, info, true
		}
	}
	s.fail(w, r, err)
	return rooms.Room{}, chat.Room{}, false
}

func (s *Server) chatSocket(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(r) && r.Header.Get("Origin") != "" {
		writeAPIError(w, http.StatusForbidden, "csrf", "", "websocket from another site refused")
		return
	}
	_, info, ok := s.chatRoom(w, r)
	if !ok {
		return
	}
	user := chatUserOf(userOf(r))
	if tok := tokenOf(r); tok != nil && !tok.Allows(rooms.ScopeChatWrite) {
		user = nil // the token reads the chat; posting needs chat:write
	}
	s.cfg.Chat.ServeWS(w, r, info, user)
}

// messageList is a page of the chat's history, oldest first.
type messageList = chat.HistoryPage

// replayChat is a page of a past broadcast's chat, oldest first.
type replayChat struct {
	Messages []replayMessage `json:"messages"`
	// Next is the cursor of the rest of the window, absent at its end.
	Next string `json:"next,omitempty"`
}

// replayMessage is a message with when, after the broadcast's start, it was posted.
type replayMessage struct {
	chat.Message
	OffsetMS int64 `json:"offset_ms"`
}

// timeoutRequest is POST /api/v1/rooms/{slug}/chat/timeouts.
type timeoutRequest struct {
	Handle  string `json:"handle"`
	Seconds int    `json:"seconds"`
	Reason  string `json:"reason"`
}

// banRequest is POST /api/v1/rooms/{slug}/chat/bans.
type banRequest struct {
	Handle string `json:"handle"`
	Reason string `json:"reason"`
}

// slowModeRequest is PUT /api/v1/rooms/{slug}/chat/slow-mode.
type slowModeRequest struct {
	// Seconds between a user's messages; 0 turns slow mode off.
	Seconds int `json:"seconds"`
}

// purgeRequest is POST /api/v1/rooms/{slug}/chat/purges.
type purgeRequest struct {
	Handle string `json:"handle"`
	// Minutes back from now (default 60, at most a day).
	Minutes int `json:"minutes"`
}

// purgeResponse says how many messages a purge deleted.
type purgeResponse struct {
	Deleted int `json:"deleted"`
}

// actionList is the moderation log, newest first.
type actionList struct {
	Actions []chat.Action `json:"actions"`
}

// banList is the bans and timeouts in force, newest first.
type banList struct {
	Bans []chat.Ban `json:"bans"`
}

func (s *Server) chatHistory(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit")
	if !ok {
		return
	}
	_, info, ok := s.chatRoom(w, r)
	if !ok {
		return
	}
	page, err := s.cfg.Chat.HistoryBefore(r.Context(), info, r.URL.Query().Get("before"), limit)
	s.respond(w, r, http.StatusOK, page, err)
}

// broadcastChat answers GET /api/v1/broadcasts/{id}/chat: the chat of a broadcast (live
// or past) from the from-th to the to-th millisecond of it, a page at a time, to those
// who may watch it.
func (s *Server) broadcastChat(w http.ResponseWriter, r *http.Request) {
	var n [3]int
	for i, name := range []string{"limit", "from", "to"} {
		var ok bool
		if n[i], ok = queryInt(w, r, name); !ok {
			return
		}
	}
	q := chat.ReplayQuery{Limit: n[0], From: time.Duration(n[1]) * time.Millisecond, To: time.Duration(n[2]) * time.Millisecond}
	if c := r.URL.Query().Get("cursor"); c != "" {
		ms, after, _ := strings.Cut(c, "_")
		at, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || at < 0 || after == "" {
			writeAPIError(w, http.StatusBadRequest, "invalid", "cursor", "cursor must be the next cursor of the previous page")
			return
		}
		q.From, q.After = time.Duration(at)*time.Millisecond, after
	}
	b, room, ok := s.admittedBroadcast(w, r)
	if !ok {
		return
	}
	if s.cfg.Chat == nil {
		writeAPIError(w, http.StatusNotFound, "not_found", "", "chat is not configured")
		return
	}
	if b.Source == rooms.SourceUpload { // never live: the room's chat of the upload's hour is not its chat
		writeJSON(w, http.StatusOK, replayChat{Messages: []replayMessage{}})
		return
	}
	q.RoomID, q.Start, q.End = room.ID, b.Started, time.Now()
	if b.Ended != nil {
		q.End = *b.Ended
	}
	page, err := s.cfg.Chat.Replay(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := replayChat{Messages: make([]replayMessage, len(page.Messages))}
	for i, m := range page.Messages {
		out.Messages[i] = replayMessage{m.Message, m.Offset.Milliseconds()}
	}
	if page.More {
		out.Next = fmt.Sprintf("%d_%s", page.Next.Milliseconds(), page.NextAfter)
	}
	writeJSON(w, http.StatusOK, out)
}

// moderator resolves the acting user and the room for a moderation request.
func (s *Server) moderator(w http.ResponseWriter, r *http.Request) (chat.User, chat.Room, bool) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return chat.User{}, chat.Room{}, false
	}
	_, info, ok := s.chatRoom(w, r)
	if !ok {
		return chat.User{}, chat.Room{}, false
	}
	return *chatUserOf(&u), info, true
}

// target resolves the user a moderation request is about.
func (s *Server) target(w http.ResponseWriter, r *http.Request, handle string) (chat.User, bool) {
	t, err := s.cfg.Rooms.UserByHandle(r.Context(), strings.TrimPrefix(handle, "@"))
	if errors.Is(err, rooms.ErrNotFound) {
		writeAPIError(w, http.StatusBadRequest, "invalid", "handle", "no user is called @"+handle)
		return chat.User{}, false
	}
	if err != nil {
		s.fail(w, r, err)
		return chat.User{}, false
	}
	return *chatUserOf(&t), true
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request) {
	actor, info, ok := s.moderator(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Chat.DeleteMessage(r.Context(), info, actor, r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) timeoutUser(w http.ResponseWriter, r *http.Request) {
	actor, info, ok := s.moderator(w, r)
	if !ok {
		return
	}
	var in timeoutRequest
	if !decode(w, r, &in) {
		return
	}
	if maxSeconds := int(chat.MaxTimeout / time.Second); in.Seconds < 1 || in.Seconds > maxSeconds {
		writeAPIError(w, http.StatusBadRequest, "invalid", "seconds", fmt.Sprintf("seconds must be between 1 and %d", maxSeconds))
		return
	}
	target, ok := s.target(w, r, in.Handle)
	if !ok {
		return
	}
	if err := s.cfg.Chat.Timeout(r.Context(), info, actor, target, time.Duration(in.Seconds)*time.Second, in.Reason); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) banUser(w http.ResponseWriter, r *http.Request) {
	actor, info, ok := s.moderator(w, r)
	if !ok {
		return
	}
	var in banRequest
	if !decode(w, r, &in) {
		return
	}
	target, ok := s.target(w, r, in.Handle)
	if !ok {
		return
	}
	if err := s.cfg.Chat.Ban(r.Context(), info, actor, target, in.Reason); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) unbanUser(w http.ResponseWriter, r *http.Request) {
	actor, info, ok := s.moderator(w, r)
	if !ok {
		return
	}
	target, ok := s.target(w, r, r.PathValue("handle"))
	if !ok {
		return
	}
	if err := s.cfg.Chat.Unban(r.Context(), info, actor, target); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) slowMode(w http.ResponseWriter, r *http.Request) {
	actor, info, ok := s.moderator(w, r)
	if !ok {
		return
	}
	var in slowModeRequest
	if !decode(w, r, &in) {
		return
	}
	if maxSeconds := int(chat.MaxSlowMode / time.Second); in.Seconds < 0 || in.Seconds > maxSeconds {
		writeAPIError(w, http.StatusBadRequest, "invalid", "seconds", fmt.Sprintf("seconds must be between 0 (off) and %d", maxSeconds))
		return
	}
	if err := s.cfg.Chat.SetSlowMode(r.Context(), info, actor, time.Duration(in.Seconds)*time.Second); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) moderationLog(w http.ResponseWriter, r *http.Request) {
	actor, info, ok := s.moderator(w, r)
	if !ok {
		return
	}
	limit, ok := queryInt(w, r, "limit")
	if !ok {
		return
	}
	actions, err := s.cfg.Chat.ModerationLog(r.Context(), info, actor, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, actionList{actions})
}

func (s *Server) listBans(w http.ResponseWriter, r *http.Request) {
	actor, info, ok := s.moderator(w, r)
	if !ok {
		return
	}
	bans, err := s.cfg.Chat.Bans(r.Context(), info, actor)
	s.respond(w, r, http.StatusOK, banList{bans}, err)
}

func (s *Server) purgeUser(w http.ResponseWriter, r *http.Request) {
	actor, info, ok := s.moderator(w, r)
	if !ok {
		return
	}
	var in purgeRequest
	if !decode(w, r, &in) {
		return
	}
	if in.Minutes == 0 {
		in.Minutes = 60
	}
	if maxMinutes := int(chat.MaxPurgeWindow / time.Minute); in.Minutes < 1 || in.Minutes > maxMinutes {
		writeAPIError(w, http.StatusBadRequest, "invalid", "minutes", fmt.Sprintf("minutes must be between 1 and %d", maxMinutes))
		return
	}
	target, ok := s.target(w, r, in.Handle)
	if !ok {
		return
	}
	n, err := s.cfg.Chat.Purge(r.Context(), info, actor, target, time.Duration(in.Minutes)*time.Minute)
	s.respond(w, r, http.StatusOK, purgeResponse{n}, err)
}
