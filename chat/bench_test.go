package chat

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// BenchmarkBroadcast measures the fan-out of one message to 1,000 in-process subscribers
// of a room (no network): encode the frame once, queue it to every subscriber without
// blocking, and let the flushers take the queues (their write is skipped here).
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
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { h.flush.run(stop) })
	}
	r := newRoom(h, Room{ID: "bench"})
	r.loaded = true
	conns := make([]*conn, subs)
	for i := range conns {
		conns[i] = &conn{h: h, r: r, id: uint64(i), gone: make(chan struct{})}
		r.join(conns[i])
	}
	drained := func() bool {
		for _, c := range conns {
			c.mu.Lock()
			n := len(c.q)
			c.mu.Unlock()
			if n > 0 {
				return false
			}
		}
		return true
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
			for !drained() {
				time.Sleep(10 * time.Microsecond)
			}
		}
	}
	for !drained() {
		time.Sleep(10 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/subs, "ns/delivery")
	close(stop)
	wg.Wait()
	if sent := h.stats.sent.Load() - sent0; sent != uint64(b.N)*subs {
		b.Fatalf("%d deliveries, want %d", sent, b.N*subs)
	}
}
