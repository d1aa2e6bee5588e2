package chat

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/scripts/testenv"
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
	h, err := New(Config{DB: client.Database("bench"), SendQueue: 4096})
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
		r.publish(textFrame(data), func() bool { return r.addMessage(m) })
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

// TestLoad1000Sockets is the load check: 1,000 websocket clients in one room (in a child
// process, as a benchmark tool would be), one poster at 100 messages/s, against FerretDB.
// It reports delivery latency percentiles and losses. It runs only with ONAIR_CHAT_LOAD=1
// (ONAIR_CHAT_LOAD_SECS, ONAIR_CHAT_LOAD_SOCKETS change the defaults of 10 s and 1,000).
func TestLoad1000Sockets(t *testing.T) {
	if os.Getenv("ONAIR_CHAT_LOAD") == "" {
		t.Skip("set ONAIR_CHAT_LOAD=1 to run the load check")
	}
	secs, sockets := 10, 1000
	if s, err := strconv.Atoi(os.Getenv("ONAIR_CHAT_LOAD_SECS")); err == nil {
		secs = s
	}
	if s, err := strconv.Atoi(os.Getenv("ONAIR_CHAT_LOAD_SOCKETS")); err == nil {
		sockets = s
	}
	const rate = 100
	total := secs * rate
	e := newEnv(t)
	th := e.hub("load", func(c *Config) {
		c.RateLimit = 1000000
		c.RatePer = time.Second
		if n, err := strconv.Atoi(os.Getenv("ONAIR_CHAT_LOAD_LOGDOCS")); err == nil {
			c.EventLogMaxDocs = int64(n)
		}
	})

	child := exec.Command(os.Args[0], "-test.run=^TestLoadClients$", "-test.v")
	child.Env = append(os.Environ(), "ONAIR_CHAT_LOAD_CLIENT="+wsURL(th, "r1", ""),
		fmt.Sprintf("ONAIR_CHAT_LOAD_CLIENT_N=%d", sockets), fmt.Sprintf("ONAIR_CHAT_LOAD_CLIENT_TOTAL=%d", total))
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	lines := bufio.NewScanner(out)
	waitLine := func(prefix string) string {
		for lines.Scan() {
			if rest, ok := strings.CutPrefix(lines.Text(), prefix); ok {
				return rest
			}
		}
		t.Fatalf("client process ended before %q", prefix)
		return ""
	}
	waitLine("READY")
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		return th.Sockets() == sockets, fmt.Sprintf("%d sockets", th.Sockets())
	})
	poster := dial(t, th, "r1", alice.ID)
	t.Logf("%d sockets joined; posting %d messages/s for %ds", sockets+1, rate, secs)
	if path := os.Getenv("ONAIR_CHAT_LOAD_FERRETPROF"); path != "" {
		go ferretProfile(t, e.mongo.URI, path, secs/2)
	}
	ferret := serverPid(e.mongo.URI)
	cpu0, self0, child0 := procCPU(ferret), procCPU(os.Getpid()), procCPU(child.Process.Pid)
	begin := time.Now()
	var ackMu sync.Mutex
	var ackLats []time.Duration
	go func() {
		for f := range poster.frames {
			switch f.Type {
			case typeAck:
				if sent, err := strconv.ParseInt(f.Nonce, 10, 64); err == nil {
					ackMu.Lock()
					ackLats = append(ackLats, f.received.Sub(time.Unix(0, sent)))
					ackMu.Unlock()
				}
			case typeError:
				t.Errorf("post refused: %s", f.raw)
			}
		}
	}()
	tick := time.NewTicker(time.Second / rate)
	for range total {
		<-tick.C
		now := strconv.FormatInt(time.Now().UnixNano(), 10)
		if err := poster.ws.WriteJSON(map[string]string{"type": "message", "text": "t=" + now, "nonce": now}); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	var res loadResult
	if err := json.Unmarshal([]byte(waitLine("RESULT ")), &res); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(begin)
	t.Logf("%d deliveries in %s, %d lost; latency p50 %s p90 %s p99 %s max %s",
		res.Got, elapsed.Round(time.Millisecond), int64(sockets*total)-res.Got, res.P50, res.P90, res.P99, res.Max)
	ackMu.Lock()
	slices.Sort(ackLats)
	if n := len(ackLats); n > 0 {
		t.Logf("ack latency (post to ack at the poster): p50 %s p99 %s max %s", ackLats[n/2], ackLats[n*99/100], ackLats[n-1])
	}
	ackMu.Unlock()
	pct := func(pid int, c0 float64) float64 { return 100 * (procCPU(pid) - c0) / elapsed.Seconds() }
	t.Logf("CPU over the run (100%% = one core): hub process %.0f%%, client process %.0f%%, FerretDB %.0f%%",
		pct(os.Getpid(), self0), pct(child.Process.Pid, child0), pct(ferret, cpu0))
	t.Logf("stats %+v", th.Stats())
	if lost := int64(sockets*total) - res.Got; lost > 0 {
		t.Errorf("%d deliveries lost", lost)
	}
	if res.P99 > 50*time.Millisecond {
		t.Errorf("p99 %s above 50 ms", res.P99)
	}
}

type loadResult struct {
	Got                int64
	P50, P90, P99, Max time.Duration
}

// TestLoadClients is TestLoad1000Sockets's client process.
func TestLoadClients(t *testing.T) {
	url := os.Getenv("ONAIR_CHAT_LOAD_CLIENT")
	if url == "" {
		t.Skip("run by TestLoad1000Sockets")
	}
	n, _ := strconv.Atoi(os.Getenv("ONAIR_CHAT_LOAD_CLIENT_N"))
	total, _ := strconv.Atoi(os.Getenv("ONAIR_CHAT_LOAD_CLIENT_TOTAL"))
	lats := make([][]time.Duration, n)
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, n)
	for i := range n {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer ws.Close()
		for range 2 { // history, viewers
			if _, _, err := ws.ReadMessage(); err != nil {
				t.Fatalf("join %d: %v", i, err)
			}
		}
		conns[i] = ws
	}
	for i, ws := range conns {
		lats[i] = make([]time.Duration, 0, total)
		wg.Go(func() {
			_ = ws.SetReadDeadline(time.Now().Add(time.Duration(total/100+30) * time.Second))
			var f struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			for len(lats[i]) < total {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now()
				if err := json.Unmarshal(data, &f); err != nil || f.Type != typeMessage {
					continue
				}
				if sent, err := strconv.ParseInt(strings.TrimPrefix(f.Text, "t="), 10, 64); err == nil {
					lats[i] = append(lats[i], now.Sub(time.Unix(0, sent)))
				}
			}
		})
	}
	fmt.Println("READY")
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	res := loadResult{Got: int64(len(all))}
	if len(all) > 0 {
		p := func(q float64) time.Duration { return all[int(float64(len(all)-1)*q)] }
		res.P50, res.P90, res.P99, res.Max = p(0.5), p(0.9), p(0.99), all[len(all)-1]
	}
	b, _ := json.Marshal(res)
	fmt.Println("RESULT " + string(b))
}

// procCPU is a process's user+system CPU time in seconds, from /proc.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// serverPid finds the pid of the process listening on the MongoDB URI's port.
func serverPid(uri string) int {
	u, err := url.Parse(uri)
	if err != nil {
		return 0
	}
	needle := "--listen-addr=" + u.Host
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(b), needle) {
			return pid
		}
	}
	return 0
}

// ferretProfile saves a CPU profile of the FerretDB server (its debug listener serves
// pprof).
func ferretProfile(t *testing.T, uri, path string, secs int) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", serverPid(uri)))
	var debug string
	for _, a := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(a, "--debug-addr="); ok {
			debug = v
		}
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debug, secs))
	if err != nil {
		t.Logf("FerretDB profile: %v", err)
		return
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	_ = os.WriteFile(path, data, 0o644)
}
