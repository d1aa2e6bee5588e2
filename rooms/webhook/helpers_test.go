package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/rooms/cluster"
	"onair/scripts/testenv"
)

const testSecret = "whsec_test-secret-0123456789abcdef"

// env is a FerretDB of the test's own and a database on it.
type env struct {
	t     *testing.T
	mongo *testenv.MongoDB
	db    *mongo.Database
}

func newEnv(t *testing.T) *env {
	t.Helper()
	m := testenv.StartMongoDB(t)
	return &env{t: t, mongo: m, db: m.Database(t, "webhook")}
}

func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelError
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name())
}

// running is a Dispatcher whose Run goroutine the test can stop.
type running struct {
	*Dispatcher
	cancel context.CancelFunc
	done   chan struct{}
}

// stop ends Run and waits for it.
func (r *running) stop() {
	r.cancel()
	<-r.done
}

// nodes is the cluster registry of a node of the test: quick heartbeats, dead soon after
// they stop.
func (e *env) nodes(id string) *cluster.Registry {
	e.t.Helper()
	reg, err := cluster.New(cluster.Config{DB: e.db, NodeID: id, HeartbeatInterval: 50 * time.Millisecond,
		StaleAfter: 400 * time.Millisecond, OpTimeout: 2 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	return reg
}

// dispatcher builds a Dispatcher with quick test settings (mod adjusts them) and runs it
// until the test ends.
func (e *env) dispatcher(node string, mod func(*Config)) *running {
	t := e.t
	t.Helper()
	reg := e.nodes(node)
	cfg := Config{
		DB: e.db, Logger: testLogger(t), Nodes: reg, AllowPrivate: true,
		Timeout: 2 * time.Second, BackoffMin: 40 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		GiveUpAfter: time.Minute, OpTimeout: 2 * time.Second, JanitorInterval: 100 * time.Millisecond,
		PollInterval: 50 * time.Millisecond, DrainTimeout: 2 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	r := &running{Dispatcher: d, cancel: stop, done: make(chan struct{})}
	// The node is alive while its dispatcher runs: both stop together.
	if err := reg.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	beating := make(chan struct{})
	go func() {
		_ = reg.Run(runCtx)
		close(beating)
	}()
	go func() {
		_ = d.Run(runCtx)
		<-beating
		close(r.done)
	}()
	t.Cleanup(r.stop)
	return r
}

// hit is one request a receiver got.
type hit struct {
	At        time.Time
	Header    http.Header
	Body      []byte
	Event     wireEvent
	Status    int // what the receiver answered
	Signature error
}

type wireEvent struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Created time.Time       `json:"created"`
	Room    Room            `json:"room"`
	Data    json.RawMessage `json:"data"`
	Text    string          `json:"text"` // Slack format
}

// receiver is a webhook consumer on loopback: answer decides each request's status
// (default 204); every request is recorded with its signature checked against secret.
type receiver struct {
	*httptest.Server
	secret string

	mu     sync.Mutex
	hits   []hit
	answer func(h hit, n int) int // n: the request's index
}

func newReceiver(t *testing.T, secret string, answer func(h hit, n int) int) *receiver {
	r := &receiver{secret: secret, answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		h := hit{At: time.Now(), Header: req.Header.Clone(), Body: b}
		_ = json.Unmarshal(b, &h.Event)
		r.mu.Lock()
		h.Signature = Verify(r.secret, req.Header.Get(SignatureHeader), b, time.Now(), DefaultTolerance)
		n := len(r.hits)
		h.Status = http.StatusNoContent
		if r.answer != nil {
			h.Status = r.answer(h, n)
		}
		r.hits = append(r.hits, h)
		r.mu.Unlock()
		w.WriteHeader(h.Status)
		if h.Status >= 300 {
			fmt.Fprintf(w, "receiver says no (%d)", n)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) setSecret(secret string) {
	r.mu.Lock()
	r.secret = secret
	r.mu.Unlock()
}

func (r *receiver) setAnswer(f func(h hit, n int) int) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

func (r *receiver) all() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hit(nil), r.hits...)
}

// delivered lists the events answered 2xx, in the order they arrived.
func (r *receiver) delivered() []hit {
	var out []hit
	for _, h := range r.all() {
		if h.Status < 300 {
			out = append(out, h)
		}
	}
	return out
}

// settled waits until the delivery log holds want deliveries matching q, none of them
// pending, and none of the nodes holds an event or a delivery in memory: from then on
// nothing more is sent, so what the receivers got is final.
func settled(t *testing.T, q DeliveryQuery, want int, nodes ...*running) []Delivery {
	t.Helper()
	q.Limit = 200
	var page DeliveryPage
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		var err error
		page, err = nodes[0].Deliveries(ctxT(t), q)
		if err != nil {
			return false, err.Error()
		}
		if len(page.Deliveries) != want {
			return false, fmt.Sprintf("%d deliveries in the log, want %d", len(page.Deliveries), want)
		}
		for _, dl := range page.Deliveries {
			if dl.Status == StatusPending {
				return false, fmt.Sprintf("delivery %s of %s still pending", dl.ID, dl.EventID)
			}
		}
		for _, n := range nodes {
			if st := n.Stats(); st.Queued != 0 || st.Pending != 0 {
				return false, fmt.Sprintf("a node still holds work: %+v", st)
			}
		}
		return true, ""
	})
	return page.Deliveries
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var (
	roomA = Room{ID: "665f00000000000000000a0a", Slug: "room-a", Title: "Room <A> & co"}
	roomB = Room{ID: "665f00000000000000000b0b", Slug: "room-b", Title: "Room B"}
)

func publish(t *testing.T, d *running, typ string, room Room, data any) string {
	t.Helper()
	e := Event{Type: typ, Room: room, Data: data}
	e.ID = "evt_" + fmt.Sprint(time.Now().UnixNano())
	if err := d.Publish(e); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

// publishPending publishes three events of typ in room A on d, which the receiver keeps
// refusing, and waits until their deliveries are stored, pending, and tried at least
// tries times in all. It returns the events' ids in order.
func publishPending(t *testing.T, d *running, rcv *receiver, typ string, tries int) []string {
	t.Helper()
	var ids []string
	for i := range 3 {
		ids = append(ids, publish(t, d, typ, roomA, map[string]any{"n": i}))
	}
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		p, err := d.Deliveries(ctxT(t), DeliveryQuery{Status: StatusPending})
		return err == nil && len(p.Deliveries) == 3 && len(rcv.all()) >= tries,
			fmt.Sprintf("%d pending, %d requests, %v", len(p.Deliveries), len(rcv.all()), err)
	})
	return ids
}
