package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/scripts/testenv"
)

// Users and rooms of the tests. Every room is owned by "owner" and moderated by "mod".
var (
	owner = User{ID: "owner", Handle: "Owner"}
	mod   = User{ID: "mod", Handle: "Mod"}
	admin = User{ID: "admin", Handle: "Admin", Admin: true}
	alice = User{ID: "alice", Handle: "alice"}
	bob   = User{ID: "bob", Handle: "bob"}
	troll = User{ID: "troll", Handle: "troll"}
)

func testRoom(id string) Room {
	return Room{ID: id, Slug: "slug-" + id, OwnerID: owner.ID, Moderators: []string{mod.ID}}
}

// env is a FerretDB server and a client of it, for one test.
type env struct {
	t      *testing.T
	mongo  *testenv.MongoDB
	client *mongo.Client
	db     *mongo.Database
}

func newEnv(t *testing.T) *env {
	t.Helper()
	m := testenv.StartMongoDB(t)
	db := m.Database(t, "chat")
	return &env{t: t, mongo: m, client: db.Client(), db: db}
}

// testHub is a running Hub behind an httptest server whose /ws route takes the room and
// the user from the query: ?room=r1&user=alice (no user: anonymous).
type testHub struct {
	*Hub
	actions *actionLog // what the hub reported (Config.Actions)
	srv     *httptest.Server
	cancel  context.CancelFunc
	done    chan error
}

func (e *env) hub(node string, tweak func(*Config)) *testHub {
	t := e.t
	t.Helper()
	cfg := Config{
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("test", t.Name()),
		DB:           e.db,
		NodeID:       node,
		OpTimeout:    2 * time.Second,
		CacheRefresh: 5 * time.Second,
		Actions:      &actionLog{},
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	users := map[string]User{}
	for _, u := range []User{owner, mod, admin, alice, bob, troll} {
		users[u.ID] = u
	}
	th := &testHub{Hub: h, done: make(chan error, 1)}
	th.actions, _ = cfg.Actions.(*actionLog)
	th.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var u *User
		if id := r.URL.Query().Get("user"); id != "" {
			uu, ok := users[id]
			if !ok {
				uu = User{ID: id, Handle: id}
			}
			u = &uu
		}
		h.ServeWS(w, r, testRoom(r.URL.Query().Get("room")), u)
	}))
	runCtx, stop := context.WithCancel(context.Background())
	th.cancel = stop
	go func() { th.done <- h.Run(runCtx) }()
	testenv.Eventually(t, 5*time.Second, func() (bool, string) { return h.live.Load(), "Run has not started" })
	t.Cleanup(func() {
		th.stop(t)
		th.srv.Close()
	})
	return th
}

// stop cancels Run and waits for it.
func (th *testHub) stop(t *testing.T) {
	th.cancel()
	select {
	case err, ok := <-th.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		close(th.done)
	case <-time.After(15 * time.Second):
		t.Errorf("Run did not return")
	}
}

// frame is any server frame, decoded loosely, with its raw bytes.
type inFrame struct {
	Type         string    `json:"type"`
	ID           string    `json:"id"`
	Nonce        string    `json:"nonce"`
	Code         string    `json:"code"`
	Message      string    `json:"message"`
	RetryAfterMS int64     `json:"retry_after_ms"`
	UserID       string    `json:"user_id"`
	Handle       string    `json:"handle"`
	Text         string    `json:"text"`
	At           time.Time `json:"at"`
	Messages     []Message `json:"messages"`
	SlowModeMS   int64     `json:"slow_mode_ms"`
	Count        int       `json:"count"`
	IntervalMS   int64     `json:"interval_ms"`
	DurationMS   int64     `json:"duration_ms"`
	Reason       string    `json:"reason"`

	Events []json.RawMessage `json:"events"`

	raw      []byte
	received time.Time
	batch    int // events in the websocket message that brought it
}

// client is a websocket client that reads every frame into a channel.
type client struct {
	t      *testing.T
	name   string
	ws     *websocket.Conn
	frames chan inFrame
	done   chan struct{}
	errMu  sync.Mutex
	err    error // why reading ended
	nonce  int
}

func wsURL(th *testHub, room, user string) string {
	q := url.Values{"room": {room}}
	if user != "" {
		q.Set("user", user)
	}
	return "ws" + strings.TrimPrefix(th.srv.URL, "http") + "/ws?" + q.Encode()
}

// dial connects user ("" for anonymous) to room and checks the join frames.
func dial(t *testing.T, th *testHub, room, user string) *client {
	t.Helper()
	c := dialRaw(t, th, room, user, nil)
	if f := c.next(5 * time.Second); f.Type != typeHistory {
		t.Fatalf("%s: first frame %s, want history: %s", c.name, f.Type, f.raw)
	}
	if f := c.next(5 * time.Second); f.Type != typeViewers {
		t.Fatalf("%s: second frame %s, want viewers: %s", c.name, f.Type, f.raw)
	}
	return c
}

func dialRaw(t *testing.T, th *testHub, room, user string, d *websocket.Dialer) *client {
	t.Helper()
	if d == nil {
		d = websocket.DefaultDialer
	}
	ws, resp, err := d.Dial(wsURL(th, room, user), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s as %q: %v (HTTP %d)", room, user, err, status)
	}
	c := &client{t: t, name: fmt.Sprintf("%s@%s", user, room), ws: ws, frames: make(chan inFrame, 4096), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { _ = c.ws.Close() })
	return c
}

func (c *client) read() {
	defer close(c.done)
	defer close(c.frames)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.errMu.Lock()
			c.err = err
			c.errMu.Unlock()
			return
		}
		now := time.Now()
		var f inFrame
		if err := json.Unmarshal(data, &f); err != nil {
			c.t.Errorf("%s: undecodable frame %q: %v", c.name, data, err)
		}
		events := []json.RawMessage{data}
		if f.Type == typeBatch {
			events = f.Events
			if len(events) < 2 {
				c.t.Errorf("%s: batch of %d events", c.name, len(events))
			}
		}
		for _, ev := range events {
			f := inFrame{raw: ev, received: now, batch: len(events)}
			if err := json.Unmarshal(ev, &f); err != nil || f.Type == typeBatch {
				c.t.Errorf("%s: undecodable or nested event %q: %v", c.name, ev, err)
			}
			c.frames <- f
		}
	}
}

func (c *client) readErr() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// next returns the next frame, failing the test if none comes within timeout.
func (c *client) next(timeout time.Duration) inFrame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("%s: socket closed: %v", c.name, c.readErr())
		}
		return f
	case <-time.After(timeout):
		c.t.Fatalf("%s: no frame within %s", c.name, timeout)
	}
	return inFrame{}
}

// waitFor skips frames until one satisfies ok.
func (c *client) waitFor(timeout time.Duration, what string, ok func(inFrame) bool) inFrame {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case f, open := <-c.frames:
			if !open {
				c.t.Fatalf("%s: socket closed while waiting for %s: %v", c.name, what, c.readErr())
			}
			if ok(f) {
				return f
			}
		case <-deadline:
			c.t.Fatalf("%s: no %s within %s", c.name, what, timeout)
		}
	}
}

func (c *client) waitType(typ string) inFrame {
	c.t.Helper()
	return c.waitFor(5*time.Second, typ, func(f inFrame) bool { return f.Type == typ })
}

// quiet checks that no frame arrives within d.
// nothingBefore checks that c got nothing more of what happened so far in room on h: it
// broadcasts a marker event there, which the room sends every socket after what it sent
// before, and requires it to be c's next frame.
func (c *client) nothingBefore(h *testHub, room string) {
	c.t.Helper()
	r := h.lookup(room)
	if r == nil {
		c.t.Fatalf("%s: room %s is not on node %s", c.name, room, h.NodeID())
	}
	id := bson.NewObjectID().Hex()
	r.publish(marshal(Message{Type: typeSystem, ID: id, Text: "marker"}), nil)
	if f := c.next(5 * time.Second); f.ID != id {
		c.t.Fatalf("%s: unexpected frame %s", c.name, f.raw)
	}
}

func (c *client) sendJSON(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

func (c *client) sendRaw(mt int, data []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(mt, data); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

// post sends a message and returns the ack or error frame answering it (other frames
// are skipped).
func (c *client) post(text string) inFrame {
	c.t.Helper()
	c.nonce++
	nonce := fmt.Sprintf("%s-%d", c.name, c.nonce)
	c.sendJSON(map[string]string{"type": "message", "text": text, "nonce": nonce})
	return c.waitFor(10*time.Second, "answer to "+nonce, func(f inFrame) bool {
		return (f.Type == typeAck || f.Type == typeError) && f.Nonce == nonce
	})
}

// mustPost posts and fails unless acknowledged.
func (c *client) mustPost(text string) inFrame {
	c.t.Helper()
	f := c.post(text)
	if f.Type != typeAck || f.ID == "" {
		c.t.Fatalf("%s: post %q: %s", c.name, text, f.raw)
	}
	return f
}

// expectError posts and fails unless refused with code.
func (c *client) expectError(text, code string) inFrame {
	c.t.Helper()
	f := c.post(text)
	if f.Type != typeError || f.Code != code {
		c.t.Fatalf("%s: post %q: got %s, want error %s", c.name, text, f.raw, code)
	}
	return f
}

// closed waits until the socket is closed and returns the read error.
func (c *client) closed(timeout time.Duration) error {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return c.readErr()
			}
		case <-deadline:
			c.t.Fatalf("%s: still open after %s", c.name, timeout)
		}
	}
}

// ctxT is a context for a test's calls, bounding a hang.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// actionLog is a Config.Actions that keeps what it is told.
type actionLog struct {
	mu  sync.Mutex
	got []reported
}

type reported struct {
	room   Room
	actor  User
	action Action
}

func (l *actionLog) Moderated(_ context.Context, room Room, actor User, a Action) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, reported{room, actor, a})
}

func (l *actionLog) all() []reported {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}
