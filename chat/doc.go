// Package chat is onair's per-room live chat: one websocket per viewer, messages stored in
// MongoDB before they are broadcast, moderation (delete, timeout, ban, slow mode), per-user
// rate limits, history on join, and fan-out across onair nodes through a capped MongoDB
// collection that every node tails (no other broker).
//
// The HTTP layer authenticates the user and resolves the room, then hands the request to
// [Hub.ServeWS]. Everything else (moderation, system notices, viewer counts, history for the
// REST API) is a method on [Hub]. Build a Hub with [New], call [Hub.EnsureIndexes] once and
// keep [Hub.Run] running: it writes, tails and serves the sockets.
//
// # Wire protocol
//
// Every frame is one JSON object with a "type". Times are RFC 3339, UTC, to the
// millisecond; ids are 24 hex digits.
//
// Client to server, the only frame a client sends (signed-in users only; the nonce is the
// client's, at most 64 bytes, echoed in the answer):
//
//	{"type":"message","text":"hello","nonce":"c-17"}
//
// Anything else (malformed JSON, unknown types or fields, trailing data, binary frames)
// gets an error with code "bad_request"; the socket stays open. A message larger than
// Config.ReadLimit (4 KiB, fragments counted together) closes the socket with code 1009, a
// control frame larger than 125 bytes (RFC 6455) with 1002. Pings are answered, but a
// client that sends pings faster than it reads the pongs gets a pong for its latest ping
// only (RFC 6455 section 5.5.3): pongs do not queue up.
//
// Server to client. On join, the history (last Config.HistorySize messages and notices,
// oldest first, deleted ones excluded, and the room's slow mode; older messages are left
// out if it would be larger than half of Config.SendQueueBytes), then the viewer count:
//
//	{"type":"history","messages":[{"type":"message","id":"6650…","user_id":"u1","handle":"ann","text":"hi","at":"2026-05-01T20:00:00.123Z"}],"slow_mode_ms":0}
//	{"type":"viewers","count":12}
//
// If the history cannot be read (MongoDB down), an error frame takes its place and the
// history follows once it can be read:
//
//	{"type":"error","code":"unavailable","message":"chat history is unavailable right now"}
//
// Live:
//
//	{"type":"message","id":"6650…","user_id":"u1","handle":"ann","text":"hi","at":"…"}
//	{"type":"system","id":"6650…","text":"went live","at":"…"}
//	{"type":"deleted","id":"6650…"}
//	{"type":"user_timeout","user_id":"u2","handle":"bob","until":"…","duration_ms":600000,"reason":"spam"}
//	{"type":"user_banned","user_id":"u2","handle":"bob","reason":"spam"}
//	{"type":"user_unbanned","user_id":"u2","handle":"bob"}
//	{"type":"slow_mode","interval_ms":10000}
//	{"type":"viewers","count":13}
//
// Live events come one per websocket message, or several in one "batch" message: those
// that came within Config.FlushDelay of each other (fewer when they came in a bunch), in
// order. A batch holds live events only (never history, ack or error frames, nor another
// batch):
//
//	{"type":"batch","events":[{"type":"message","id":"6650…",…},{"type":"viewers","count":14}]}
//
// To the sender of a message, once it is stored (before or with its broadcast):
//
//	{"type":"ack","nonce":"c-17","id":"6650…","at":"…"}
//
// or, when it is refused, an error carrying the nonce and, where waiting helps,
// retry_after_ms:
//
//	{"type":"error","code":"rate_limited","message":"…","nonce":"c-17","retry_after_ms":3400}
//
// Error codes: bad_request, unauthorized (anonymous sockets read only), invalid (empty
// text), too_long (more than Config.MaxLength runes), rate_limited, slow_mode, banned,
// timed_out (with the time left), unavailable (MongoDB down: not stored, not broadcast;
// send again), internal (MongoDB refused to store it: sending again does not help). A socket is closed with 1001 when the server stops, 1013 when it cannot
// keep up (it would hold more than Config.SendQueue messages or Config.SendQueueBytes
// bytes, 256 KiB by default, not yet written to it, whether or not the client has signed
// in), 1009 or 1002 for an oversize frame, 4403 when its user may no longer
// be in the room (a private room's invitation revoked: see admit.go), and without a close
// frame when it stops answering pings or a write to it stalls for Config.WriteTimeout.
//
// # Text
//
// Message text is plain text everywhere. It is stored and delivered verbatim (HTML is never
// escaped or sanitised, not even as JSON \u003c escapes; clients must render it as text)
// except that control characters U+0000–U+001F other than newline (so tabs and carriage
// returns go too), U+007F–U+009F and the bidirectional embedding, override and isolate
// characters (U+202A–U+202E, U+2066–U+2069) are removed, invalid UTF-8 becomes U+FFFD, and
// surrounding white space is trimmed. Newlines are kept. After that the text must be 1 to
// Config.MaxLength characters (runes).
//
// # Limits and moderation
//
// Each user may post Config.RateLimit messages per Config.RatePer in a room (defaults 5 per
// 10 s), moderators included. Slow mode allows one message per interval per user; the
// room's owner, its moderators and admins are exempt. Each node counts a user's posts
// through other nodes too, as their messages arrive from the event log: posting through
// two nodes at once can exceed the limit only by what is in flight (about 100 ms).
//
// The owner, moderators and admins moderate (through the HTTP API; the socket only posts),
// and rank admin > owner > moderator > user:
//   - nobody moderates themselves, nor a user of the same or a higher rank: a moderator
//     cannot ban, time out or lift the ban of the owner, an admin or another moderator;
//   - a ban or timeout in force is changed or lifted only by someone of at least the rank
//     of who set it: a moderator cannot lift, shorten or take over a ban or timeout set by
//     the owner or an admin (admins lift any but their own);
//   - a message is deleted by its author or by someone who outranks its author: a
//     moderator cannot delete the owner's, an admin's or another moderator's messages;
//   - a purge (Purge: a user's messages of up to the last day, typically with a ban)
//     deletes them as DeleteMessage would, and only someone who outranks the user purges;
//   - slow mode in force is changed only by someone of at least the rank of who set it;
//   - a user banned or timed out in the room cannot moderate it, nor read its moderation
//     log, while that holds, whatever their rank.
//
// A refused action changes nothing and fails with an error wrapping ErrForbidden that says
// which rule refused it (the HTTP API answers 403 "forbidden" with that message). Ranks
// are the room's as it is now; whether a user was an admin is recorded with their messages,
// bans, timeouts and slow mode.
//
// Bans lists the bans and timeouts in force, for the moderators' unban list.
//
// Bans and timeouts are checked on every post against a per-room cache, loaded from
// MongoDB when the room's first socket joins, kept current by moderation events of every
// node and reloaded every Config.CacheRefresh. Every action is recorded in chat_moderation.
// A socket's privileges (for slow mode) are those of the room it was given when it joined.
//
// # Storage
//
// In Config.DB: chat_messages (index room_at on room, at, _id), chat_moderation (index
// room_at on room, at), chat_bans (_id "<room>/<user>", index room on room), chat_settings
// (_id the room ID). In Config.EventDB (default: DB's name + "_events"): the capped
// collection chat_events. See the document types in store.go.
//
// # Cross-node fan-out
//
// See events.go. Each node writes its events, in order, to chat_events in batches of
// up to 50 ms and tails the collection, delivering the other nodes' events; its own reach
// its sockets directly. Per room, sockets see a node's messages in the order that node
// stored them.
package chat
