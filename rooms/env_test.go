package rooms

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/rooms/cluster"
	"onair/scripts/testenv"
)

// testEnv is a Service on a FerretDB of the test's own, so that tests can stop and
// restart the server; FerretDB starts in about 0.1 s.
type testEnv struct {
	t       *testing.T
	mongo   *testenv.MongoDB
	db      *mongo.Database
	svc     *Service
	clock   *fakeClock
	logs    *logRecorder
	stopper *fakeStopper
}

// cheapPassword keeps tests fast (argon2 under -race is slow); TestPasswordCost checks
// the defaults.
var cheapPassword = PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}

// newEnv starts FerretDB and a Service with test-friendly settings; mod adjusts cfg.
func newEnv(t *testing.T, mod func(*Config)) *testEnv {
	t.Helper()
	m := testenv.StartMongoDB(t)
	e := &testEnv{t: t, mongo: m, db: m.Database(t, "rooms"), clock: &fakeClock{}, stopper: &fakeStopper{}}
	var logger *slog.Logger
	e.logs, logger = newLogRecorder(t)
	cfg := Config{
		DB:              e.db,
		Cluster:         e.node("node-a", "http://10.0.0.1:8080"),
		Logger:          logger,
		Now:             e.clock.Now,
		Stopper:         e.stopper,
		Password:        cheapPassword,
		OpTimeout:       time.Second,
		RetryMin:        20 * time.Millisecond,
		RetryMax:        200 * time.Millisecond,
		ViewersInterval: 50 * time.Millisecond,
		DrainTimeout:    2 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	var err error
	e.svc, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = e.svc.Run(ctx)
		close(done)
	}()
	// Registered after StartMongoDB's cleanup, so it runs first: the Service stops while
	// its server is still up.
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return e
}

// node is the cluster registry of a node of the test, on the test's clock, with one
// heartbeat written: it stays alive until the clock moves past StaleAfter, unless the test
// beats it again.
func (e *testEnv) node(id, url string) *cluster.Registry {
	e.t.Helper()
	r, err := cluster.New(cluster.Config{DB: e.db, NodeID: id, AdvertiseURL: url, Now: e.clock.Now, OpTimeout: time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := r.EnsureIndexes(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	if err := r.Beat(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *testEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// signUp creates an account or fails the test.
func (e *testEnv) signUp(handle string) Login {
	e.t.Helper()
	l, err := e.svc.SignUp(e.ctx(), SignUp{Email: handle + "@example.com", Handle: handle, Password: "correct horse battery"})
	if err != nil {
		e.t.Fatalf("sign up %s: %v", handle, err)
	}
	return l
}

// createRoom creates a room or fails the test.
func (e *testEnv) createRoom(owner User, slug, title string) (Room, string) {
	e.t.Helper()
	r, key, err := e.svc.CreateRoom(e.ctx(), owner, NewRoom{Slug: slug, Title: title})
	if err != nil {
		e.t.Fatalf("create room %s: %v", slug, err)
	}
	return r, key
}

// fakeClock is a settable clock; its zero value follows time.Now plus an offset.
type fakeClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// logRecorder keeps every log line at debug level, so that tests can check that no
// secret reaches the logs; ROOMS_TEST_LOG=1 also shows them in the test's output.
type logRecorder struct {
	t      *testing.T
	mu     sync.Mutex
	buf    strings.Builder
	closed bool
}

func newLogRecorder(t *testing.T) (*logRecorder, *slog.Logger) {
	w := &logRecorder{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
	})
	return w, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (w *logRecorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.closed && os.Getenv("ROOMS_TEST_LOG") != "" {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (w *logRecorder) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// count says how many log lines contain s.
func (w *logRecorder) count(s string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Count(w.buf.String(), s)
}

// waitLogged waits until more than n log lines contain s (n: a count taken before).
func (e *testEnv) waitLogged(s string, n int) {
	e.t.Helper()
	testenv.Eventually(e.t, 10*time.Second, func() (bool, string) {
		return e.logs.count(s) > n, fmt.Sprintf("no new log line with %q", s)
	})
}

// assertNotLogged fails the test if any of the secrets appears in the logs.
func (e *testEnv) assertNotLogged(secrets ...string) {
	e.t.Helper()
	logs := e.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			e.t.Errorf("a secret (%.6s…) was logged", s)
		}
	}
}

// fakeStopper is a StreamStopper (this package's own interface) that records its calls
// and passes them on to a real hub once one is set.
type fakeStopper struct {
	mu    sync.Mutex
	calls []stopCall
	hub   StreamStopper
}

type stopCall struct {
	name   string
	reason error
}

func (f *fakeStopper) Stop(name string, reason error) bool {
	f.mu.Lock()
	f.calls = append(f.calls, stopCall{name, reason})
	hub := f.hub
	f.mu.Unlock()
	return hub != nil && hub.Stop(name, reason)
}

func (f *fakeStopper) setHub(h StreamStopper) {
	f.mu.Lock()
	f.hub = h
	f.mu.Unlock()
}

func (f *fakeStopper) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.name)
	}
	return out
}

func (f *fakeStopper) last() stopCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return stopCall{}
	}
	return f.calls[len(f.calls)-1]
}
