package chat

import (
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// BenchmarkBroadcast measures the fan-out of one message to 1,000 in-process subscribers
// of a room (no network): encode and prepare the message once and queue it to every
// subscriber without blocking. Writing it is left out: the queues are emptied as a writer
// would, without the writes.
func BenchmarkBroadcast(b *testing.B) {
	const subs = 1000
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1")) // never used
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(Config{DB: client.Database("bench"), NodeID: "bench", SendQueue: 4096})
	if err != nil {
		b.Fatal(err)
	}
	r := newRoom(h, Room{ID: "bench"})
	r.loaded = true
	conns := make([]*conn, subs)
	for i := range conns {
		conns[i] = &conn{h: h, r: r, id: uint64(i), writing: true, gone: make(chan struct{})} // no network: no writer starts
		r.join(conns[i])
	}
	written := func() {
		for _, c := range conns {
			c.mu.Lock()
			clear(c.q)
			c.q, c.held = c.q[:0], 0
			c.mu.Unlock()
		}
	}
	m := Message{Type: typeMessage, UserID: "u1", Handle: "someone", Text: "hello, this is a chat message of a typical length", At: time.Now()}
	sent0 := h.stats.sent.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m.ID = strconv.Itoa(i)
		data := marshal(m)
		r.publish(data, func() bool { return r.addMessage(m) })
		if i%1024 == 1023 {
			written()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/subs, "ns/delivery")
	if sent := h.stats.sent.Load() - sent0; sent != uint64(b.N)*subs {
		b.Fatalf("%d deliveries, want %d", sent, b.N*subs)
	}
}
