// Package rooms keeps onair's accounts, sessions, rooms, stream keys and broadcasts in
// MongoDB, as a library: the web package serves it over HTTP, the chat package asks it
// who may moderate, cmd/onair wires it to the media hub: ResolveKey, Claim and
// StartBroadcast answer the hub in rooms' own types (streams.go); rooms does not import
// media.
//
// # Lifecycle
//
//	svc, err := rooms.New(rooms.Config{DB: client.Database("onair"), Logger: log, Cluster: registry,
//		Stopper: rooms.StreamStopperFunc(func(n string, r error) bool { return hub.Stop(n, r) })})
//	err = svc.EnsureIndexes(ctx) // idempotent, at every start
//	go svc.Run(ctx)              // janitors; on shutdown waits for broadcasts to be closed
//
// # Collections
//
//	users       {_id ObjectId, email, handle, password (argon2id PHC string), admin, created,
//	             disabled (set by an admin, users.go)}
//	            unique email_unique {email}, unique handle_unique {handle}
//	sessions    {_id: hex SHA-256 of the token, user_id, created, expires, csrf}
//	            user {user_id}, expires {expires}
//	rooms       {_id, slug, title, stream_title (absent: none), description, visibility (public, unlisted, private),
//	             owner_id, owner_handle, moderators [{id, handle}], invited [{id, handle}],
//	             recording, key_hash (hex SHA-256 of the stream key),
//	             created, updated, activity, live, broadcast_id (null offline),
//	             live_started, live_node, viewers}
//	            unique slug_unique {slug}, unique key_hash_unique {key_hash},
//	            owner {owner_id, activity -1}, listing {visibility, live -1, activity -1, _id -1}
//	broadcasts  {_id, room_id, room_slug, title (absent: before titles), stream (the stream's name; absent: room_slug),
//	             run_id, node, started, ended (null while live),
//	             end_reason, heartbeat, codecs {video, audio}, resolution {width, height},
//	             bytes, duration_ms, bitrate, peak_viewers, total_viewers, recording {...}}
//	            room_started {room_id, started -1}, open {ended, heartbeat}
//	clips       {_id (random, unguessable), room_id, broadcast_id, title, maker_id, maker_handle, start_ms,
//	             duration_ms, created, media {key, init_size, size, duration_ms, segments}, deleted}
//	            (clips.go) room_created {room_id, created -1}, maker_created {maker_id, created -1}, created {created}
//	api_tokens  {_id: hex SHA-256 of the token, tid, user_id, name, scopes [], created,
//	             expires} (tokens.go)
//	rooms_meta  {_id: "first_admin", user_id, created}
//	            {_id: "playback_secret", secret (32 random bytes), created}
//	recording_uploads, recording_fragments: the recordings in progress, owned by lease
//	            (ledger.go)
//
// # The embedded database
//
// Production runs on MongoDB 7+ (or Atlas); `make run` and the tests run on an embedded
// MongoDB-compatible server, FerretDB 1.24. rooms and its sub-packages take no branch on
// which one they talk to: they use only what both do alike, and the few workarounds that
// need code are in one package, rooms/mongodb (index creation, duplicate keys,
// distinct). The limits of the embedded server that the design respects, here and in
// rooms/cluster, rooms/audit and rooms/webhook:
//   - No transactions: every operation is a single-document write; the first admin is
//     decided by the unique insert of the rooms_meta marker, not by counting users, and a
//     lease is a unique insert, never an update.
//   - Concurrent updates of one document can be lost: each document that changes has one
//     writer (a broadcast its goroutine, which also copies a title changed while live from
//     the room (titles.go), a webhook delivery its node, a recording upload its lease holder), login failures and audit entries are inserts, and this process
//     serialises its writes to a room or user document with a per-document lock. Conditional updates
//     (live_started only grows, set offline only if broadcast_id is ours) keep delayed
//     writes from undoing newer ones. On MongoDB these rules are merely sufficient.
//   - No TTL indexes: janitors delete expired sessions, API tokens, login failures and
//     finished webhook deliveries; Authenticate and AuthenticateToken check expiry
//     themselves.
//   - $elemMatch and conditional $pull on arrays of sub-documents do not work: moderators
//     and invited viewers are matched in Go and pulled as exact sub-documents.
//   - No text indexes: title search is an escaped, case-insensitive $regex.
//
// Running several onair nodes against one embedded server is not supported (the per-room
// lock is per process); against MongoDB it is.
//
// # Private rooms, playback ids and tokens
//
// access.go holds the access rule (Room.Admit) and invitations; playback.go the ids and
// tokens. A room's playback id and a broadcast's public id are its ObjectID encrypted
// under a key derived from the playback secret, so they exist for every document without
// a write and decode back to the ObjectID. Broadcast.ID is the public id everywhere. The
// stream of a room that is not public is named by its playback id (Room.StreamName).
// Playback tokens are HMACs under the same secret: any node verifies them.
//
// # Several nodes
//
// Config.Cluster (rooms/cluster) is the node registry shared by every part of the process.
// A live stream is owned by one node through a lease on it (live.go): the hub asks Claim
// before it accepts a publisher, so a second publisher on another node is refused while
// the first sends, and OBS reconnecting to another node after the first went quiet takes
// the stream over. Only the lease holder sets a room offline and announces its end.
//
// # Broadcasts
//
// StartBroadcast returns at once; a goroutine per broadcast inserts its document, sets the room
// live, refreshes viewer counts and a heartbeat while live, and on the stream's end writes
// the final figures and sets the room offline, retrying with backoff while MongoDB is
// unreachable. A node that crashes leaves broadcasts open: it ends its own at its next
// start (same node id), and the other nodes end those of a node the registry counts as
// dead; the one that takes the stream's lease sets the room offline and announces it.
//
// # Errors
//
// Methods return errors wrapping one of ErrNotFound, ErrForbidden, ErrUnauthorized,
// ErrConflict (*ConflictError names the field), ErrInvalid (*ValidationError names the
// field), ErrRateLimited (*RateLimitError says when to retry) or ErrUnavailable (MongoDB
// unreachable: answer 503 and retry later). Code maps them to stable strings.
//
// rooms/audit, rooms/webhook and rooms/cluster follow the same style: sentinel Err*
// variables, wrapped with %w and context ("find webhook: webhook not found"), and a typed
// error only where it carries fields (*ValidationError names the rejected field, and
// errors.Is(err, ErrInvalid) holds for it; *cluster.HeldError names the holder).
//
// Callers pass a request's context. Each MongoDB operation is also bounded by
// Config.OpTimeout (3 s by default), so a method fails with ErrUnavailable within a few
// seconds while MongoDB is down; nothing needs resetting when it is back. ResolveKey
// answers from its cache after that timeout (below the RTMP handler's 5 s). SignUp and
// LogIn also spend one argon2id hash (tens of milliseconds) on top, waiting for a free
// slot when MaxConcurrentHashes are running.
//
// # Audit trail and events
//
// Config.Audit (a rooms/audit.Recorder) is told of every owner and admin action once it
// took effect: room create, update and delete, key rotation, moderators added and removed,
// broadcast deletes. OnLive, OnEnded and OnRecording announce broadcasts; cmd/onair turns
// them into webhooks (rooms/webhook).
//
// # Accounts
//
// users.go is what admins do to accounts (list, disable, make admin); account.go what
// holders do to their own (change the password, sign out everywhere, delete it with
// everything it owns); tokens.go personal API tokens with scopes. A disabled account is
// refused everywhere: sessions, API tokens, new publishes (ResolveKey), the live
// publishes of its rooms on every node (checkRoom, at the broadcast heartbeat) and its
// chat sockets (Admitted).
//
// Secrets: passwords, session tokens, API tokens, stream keys, playback tokens and the
// playback secret are never logged (KeyID and TokenFingerprint fingerprint keys and
// tokens); session tokens, API tokens and keys are stored only as SHA-256 hashes.
package rooms
