package chat

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"onair/scripts/bench/benchkit"
)

// The load generator runs as a process of its own (`bench chat -worker`), so that its
// CPU is never counted as the server's. Its stdin and stdout are a line protocol with
// the benchmark:
//
//	in:  {spec as JSON}
//	out: READY                 every client is connected and in the room
//	in:  GO
//	out: START                 warm-up done; the measured window begins with the first send
//	out: DONE                  every delivery and ack is in (or the drain time ran out)
//	out: RESULT {loadResult as JSON}
//
// Every message carries a stamp at the start of its text, `~<phase><seq>.<send time,
// Unix ns>~ <filler>`, so that each client measures its own delivery latency (sender and
// receivers share the load generator's clock) and counts what it got, whatever the
// server wraps the text in: onair's {"type":"message",…,"text":"~m17.…~ …"} and
// socket.io's 42["msg",{"room":…,"text":"~m17.…~ …"}] both hold it after `"text":"~`.

// Protocols the load generator speaks.
const (
	protoOnair    = "onair"    // onair's JSON frames (chat/doc.go) on /api/v1/rooms/{slug}/chat
	protoSocketIO = "socketio" // Engine.IO v4 / Socket.IO v5 over a websocket from the start
)

// Stamp phases: warm-up messages are not counted.
const (
	phaseWarm    = 'w'
	phaseMeasure = 'm'
)

// spec tells the load generator what to do.
type spec struct {
	Proto   string  `json:"proto"`
	Groups  []group `json:"groups"`  // the anonymous readers, by where they connect
	Senders []group `json:"senders"` // they post in turn; each one reads too (group "senders")
	// Rate is messages per second over all senders, for Duration, after posting at Rate
	// until every client got a warm-up message and Warmup more.
	Rate      float64
	Duration  time.Duration
	Warmup    time.Duration
	Drain     time.Duration // the longest wait for the last deliveries and acks
	TextBytes int
}

// group is Clients sockets on URL; a sender's Cookie is its session.
type group struct {
	Name    string `json:"name"`
	URL     string `json:"url"`
	Clients int    `json:"clients"`
	Cookie  string `json:"cookie,omitempty"`
}

// loadResult is what the load generator measured.
type loadResult struct {
	Clients int `json:"clients"` // receiving sockets, senders included
	// Messages posted in the window, acknowledged, refused (by error code) and never
	// answered within the drain time.
	Sent, Acked, Refused, Unanswered int
	RefusedBy                        map[string]int `json:"refused_by,omitempty"`
	AckLatency                       latency        `json:"ack_latency"`
	SendSlipMax                      float64        `json:"send_slip_max_ms"` // latest send behind schedule
	Drained                          bool           `json:"drained"`
	Groups                           []groupResult  `json:"groups"`
	Total                            groupResult    `json:"total"`
}

// groupResult is what a group of clients received of the acknowledged messages:
// Expected is acknowledged messages × clients, Delivered counts each (client, message)
// once, Lost = Expected − Delivered.
type groupResult struct {
	Name                                  string
	Clients, Complete, Dropped            int
	Expected, Delivered, Lost, Duplicates int64
	FirstError                            string `json:",omitempty"`
	Latency                               latency
}

// latency summarises delivery latencies (send to receipt), in milliseconds; with no
// samples every figure is 0 (JSON has no NaN).
type latency struct {
	Samples                            int
	P50MS, P90MS, P99MS, P999MS, MaxMS float64
}

// summarize summarises latencies in microseconds by the nearest-rank method; it sorts us.
func summarize(us []int32) latency {
	if len(us) == 0 {
		return latency{}
	}
	slices.Sort(us)
	rank := func(p float64) float64 { // the epsilon keeps 99.9 % of 1000 at rank 999
		return float64(us[min(max(int(math.Ceil(p/100*float64(len(us))-1e-9)), 1), len(us))-1]) / 1000
	}
	return latency{len(us), rank(50), rank(90), rank(99), rank(99.9), float64(us[len(us)-1]) / 1000}
}

// load is the load generator's state.
type load struct {
	spec     spec
	n        int // messages of the window
	clients  []*client
	senders  []*client
	sentAt   []atomic.Int64 // per message: send time, Unix ns
	answerAt []atomic.Int64 // per message: when its ack or refusal came
	answer   []atomic.Int32 // per message: 0 none yet, 1 acked, 2 refused
	acked    atomic.Int64
	refused  atomic.Int64
	got      atomic.Int64 // first arrivals of the window's messages, all clients
	closing  atomic.Bool
	mu       sync.Mutex
	refuses  map[string]int
}

// client is one websocket: a reader of the room and, for senders, a poster too.
type client struct {
	l        *load
	group    int
	sender   bool
	ws       *websocket.Conn
	wmu      sync.Mutex // one writer at a time (posts, pongs)
	lastWarm atomic.Int64
	dialTo   string
	cookie   string
	buf      []byte // the reader's frame buffer
	// Written by the reader, read once done is closed.
	counts []uint8 // per message of the window: how often it arrived
	lat    []int32 // first arrivals' latencies, µs
	err    error   // why the reader stopped before the end
	done   chan struct{}
}

// runWorker is the load generator's main.
func runWorker(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewReader(stdin)
	line, err := in.ReadBytes('\n')
	var s spec
	if err == nil {
		err = json.Unmarshal(line, &s)
	}
	if err != nil {
		return fmt.Errorf("chat worker: spec: %w", err)
	}
	n := int(s.Rate * s.Duration.Seconds())
	l := &load{spec: s, n: n, sentAt: make([]atomic.Int64, n), answerAt: make([]atomic.Int64, n), answer: make([]atomic.Int32, n), refuses: map[string]int{}}
	groups := append(slices.Clone(s.Groups), group{Name: "senders"})
	for i, g := range groups {
		clients := g.Clients
		if g.Name == "senders" {
			clients = len(s.Senders)
		}
		for k := range clients {
			c := &client{l: l, group: i, sender: g.Name == "senders", counts: make([]uint8, n), done: make(chan struct{})}
			c.lastWarm.Store(-1)
			l.clients = append(l.clients, c)
			if c.sender {
				l.senders = append(l.senders, c)
				g = s.Senders[k]
			}
			c.dialTo, c.cookie = g.URL, g.Cookie
		}
	}
	defer l.closeAll()
	if err := l.connect(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "READY")
	if cmd, err := in.ReadString('\n'); err != nil || strings.TrimSpace(cmd) != "GO" {
		return fmt.Errorf("chat worker: expected GO, got %q (%v)", cmd, err)
	}
	if err := l.warmUp(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "START")
	res := l.measure(ctx)
	fmt.Fprintln(stdout, "DONE")
	l.closeAll()
	l.collect(&res, groups)
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "RESULT "+string(b))
	return ctx.Err()
}

// connect dials and joins every client, 32 at a time, within 90 s.
func (l *load) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i, c := range l.clients {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := c.connect(ctx); err != nil {
				once.Do(func() { first = fmt.Errorf("chat worker: client %d: %w", i, err); cancel() })
			}
		})
	}
	wg.Wait()
	return first
}

// closeAll closes every connection and waits for the readers; safe to call twice.
func (l *load) closeAll() {
	if l.closing.Swap(true) {
		return
	}
	for _, c := range l.clients {
		if c.ws != nil {
			_ = c.ws.Close()
		}
	}
	for _, c := range l.clients {
		if c.ws != nil {
			<-c.done
		}
	}
}

// answered records the server's answer to message seq of phase: ack when code is "".
func (l *load) answered(phase byte, seq int, code string) {
	if phase != phaseMeasure || seq < 0 || seq >= l.n || !l.answer[seq].CompareAndSwap(0, 1+int32(min(len(code), 1))) {
		return
	}
	l.answerAt[seq].Store(time.Now().UnixNano())
	if code == "" {
		l.acked.Add(1)
		return
	}
	l.refused.Add(1)
	l.mu.Lock()
	l.refuses[code]++
	l.mu.Unlock()
}

// missingWarm counts the clients that lack warm-up message seq or a later one.
func (l *load) missingWarm(seq int64) int {
	n := 0
	for _, c := range l.clients {
		if c.lastWarm.Load() < seq {
			n++
		}
	}
	return n
}

// warmUp posts at the rate until every client has received a message and spec.Warmup
// has passed since, then waits until every client has the last one, so that no warm-up
// traffic runs into the window.
func (l *load) warmUp(ctx context.Context) error {
	interval := time.Duration(float64(time.Second) / l.spec.Rate)
	start := time.Now()
	var allSince time.Time
	seq := 0
	for ; allSince.IsZero() || time.Since(allSince) < l.spec.Warmup; seq++ {
		if err := l.senders[seq%len(l.senders)].post(phaseWarm, seq); err != nil {
			return fmt.Errorf("chat worker: warm-up post: %w", err)
		}
		if allSince.IsZero() && l.missingWarm(0) == 0 {
			allSince = time.Now()
		}
		if time.Since(start) > l.spec.Warmup+20*time.Second {
			return fmt.Errorf("chat worker: %d of %d clients received no warm-up message within %s", l.missingWarm(0), len(l.clients), time.Since(start))
		}
		if err := benchkit.SleepUntil(ctx, start.Add(time.Duration(seq+1)*interval)); err != nil {
			return err
		}
	}
	for deadline := time.Now().Add(10 * time.Second); l.missingWarm(int64(seq-1)) > 0; {
		if time.Now().After(deadline) {
			return fmt.Errorf("chat worker: %d of %d clients lack the last warm-up message 10 s after it was sent", l.missingWarm(int64(seq-1)), len(l.clients))
		}
		if err := benchkit.SleepUntil(ctx, time.Now().Add(5*time.Millisecond)); err != nil {
			return err
		}
	}
	return nil
}

// measure posts the window's messages on schedule, the senders in turn, then waits for
// the deliveries and acks.
func (l *load) measure(ctx context.Context) loadResult {
	interval := time.Duration(float64(time.Second) / l.spec.Rate)
	queues := make([]chan int, len(l.senders))
	var slipMax, sendErrs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i, s := range l.senders {
		queues[i] = make(chan int, l.n)
		wg.Go(func() {
			for seq := range queues[i] {
				now := time.Now()
				l.sentAt[seq].Store(now.UnixNano())
				slip := int64(now.Sub(start.Add(time.Duration(seq) * interval)))
				for old := slipMax.Load(); slip > old && !slipMax.CompareAndSwap(old, slip); old = slipMax.Load() {
				}
				if s.post(phaseMeasure, seq) != nil {
					sendErrs.Add(1)
				}
			}
		})
	}
	sent := 0
	for ; sent < l.n && benchkit.SleepUntil(ctx, start.Add(time.Duration(sent)*interval)) == nil; sent++ {
		queues[sent%len(queues)] <- sent
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	res := loadResult{Sent: sent, SendSlipMax: float64(slipMax.Load()) / 1e6, Clients: len(l.clients)}
	posted := int64(sent) - sendErrs.Load()
	for deadline := time.Now().Add(l.spec.Drain); ; {
		acked := l.acked.Load()
		if acked+l.refused.Load() == posted && l.got.Load() == acked*int64(len(l.clients)) {
			res.Drained = true
			break
		}
		if time.Now().After(deadline) || benchkit.SleepUntil(ctx, time.Now().Add(2*time.Millisecond)) != nil {
			break
		}
	}
	res.Unanswered = int(posted - l.acked.Load() - l.refused.Load())
	return res
}

// collect fills in what the clients received; the readers have ended.
func (l *load) collect(res *loadResult, groups []group) {
	var acks []int32
	for seq := range l.n {
		if l.answer[seq].Load() == 1 {
			acks = append(acks, micros(l.answerAt[seq].Load()-l.sentAt[seq].Load()))
		}
	}
	res.Acked, res.Refused, res.AckLatency = int(l.acked.Load()), int(l.refused.Load()), summarize(acks)
	if len(l.refuses) > 0 {
		res.RefusedBy = l.refuses
	}
	for g, spec := range groups {
		if gr := l.tally(spec.Name, func(c *client) bool { return c.group == g }); gr.Clients > 0 {
			res.Groups = append(res.Groups, gr)
		}
	}
	res.Total = l.tally("all", func(*client) bool { return true })
}

// tally adds up what the clients in the group received of the acknowledged messages.
func (l *load) tally(name string, in func(*client) bool) groupResult {
	gr := groupResult{Name: name}
	var lats []int32
	for _, c := range l.clients {
		if !in(c) {
			continue
		}
		gr.Clients++
		lost := int64(0)
		for seq, n := range c.counts {
			gr.Duplicates += int64(max(n, 1) - 1)
			gr.Delivered += int64(min(n, 1))
			if n == 0 && l.answer[seq].Load() == 1 {
				lost++
			}
		}
		gr.Expected += l.acked.Load()
		gr.Lost += lost
		gr.Complete += int(1 - min(lost, 1))
		if c.err != nil {
			gr.Dropped++
			gr.FirstError = cmp.Or(gr.FirstError, c.err.Error())
		}
		lats = append(lats, c.lat...)
	}
	gr.Latency = summarize(lats)
	return gr
}

// micros converts nanoseconds to microseconds, clamped to int32 (a negative latency,
// from a clock step, becomes 0).
func micros(ns int64) int32 { return int32(min(max(ns/1000, 0), math.MaxInt32)) }

// connect dials (retrying while the server answers 503, onair's chat until its hub
// runs) and waits until the client is in the room: onair's history frame, or
// socket.io's connect and the acknowledgement of a "join" event.
func (c *client) connect(ctx context.Context) error {
	u, _ := url.Parse(c.dialTo)
	h := http.Header{"Origin": {"http://" + u.Host}} // the server's own origin, as its page would send
	if c.cookie != "" {
		h.Set("Cookie", c.cookie)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}
	for {
		ws, resp, err := d.DialContext(ctx, c.dialTo, h)
		if err == nil {
			c.ws = ws
			break
		}
		if resp != nil && resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("dial %s: HTTP %d: %w", u.Path, resp.StatusCode, err)
		}
		if serr := benchkit.SleepUntil(ctx, time.Now().Add(100*time.Millisecond)); serr != nil {
			return fmt.Errorf("dial %s: %w (last: %w)", u.Path, serr, err)
		}
	}
	deadline, _ := ctx.Deadline()
	_ = c.ws.SetReadDeadline(deadline)
	await := func(prefix string, reply string) error {
		for {
			_, data, err := c.ws.ReadMessage()
			if err != nil {
				return fmt.Errorf("join (waiting for %s): %w", prefix, err)
			}
			if bytes.Equal(data, []byte("2")) { // socket.io's ping
				err = c.write([]byte("3"))
			}
			if err != nil || bytes.HasPrefix(data, []byte(prefix)) {
				if err == nil && reply != "" {
					err = c.write([]byte(reply))
				}
				return err
			}
		}
	}
	var err error
	if c.l.spec.Proto == protoOnair {
		err = await(`{"type":"history",`, "")
	} else if err = await("0{", "40"); err == nil { // Engine.IO open, Socket.IO connect to "/"
		if err = await("40", `420["join","bench"]`); err == nil {
			err = await("430", "")
		}
	}
	if err != nil {
		_ = c.ws.Close()
		c.ws = nil
		return err
	}
	_ = c.ws.SetReadDeadline(time.Time{})
	go c.read()
	return nil
}

func (c *client) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

// read receives frames until the connection ends.
func (c *client) read() {
	defer close(c.done)
	for {
		data, err := c.next()
		if err == nil {
			err = c.frame(data, time.Now().UnixNano())
		}
		if err != nil {
			if !c.l.closing.Load() {
				c.err = err
			}
			return
		}
	}
}

// next reads the next data frame into the client's buffer: a million deliveries a
// second of garbage would cost the machine's CPU that the servers are measured on.
func (c *client) next() ([]byte, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	b := c.buf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			c.buf = b
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// frame handles one frame of onair's chat or one Engine.IO packet.
func (c *client) frame(data []byte, now int64) error {
	switch {
	case bytes.HasPrefix(data, []byte(`{"type":"batch",`)):
		// A batch holds live events only (chat/doc.go): its messages are found by their
		// stamps, not by decoding it, since the generator's CPU is the machine's that the
		// servers are measured on.
		for rest := data; ; {
			i := bytes.Index(rest, []byte(stampMark))
			if i < 0 {
				break
			}
			c.stamped(rest[i:], now)
			rest = rest[i+len(stampMark):]
		}
	case bytes.HasPrefix(data, []byte(`{"type":"message",`)), bytes.HasPrefix(data, []byte(`42["msg",`)):
		c.stamped(data, now)
	case bytes.Equal(data, []byte("2")):
		return c.write([]byte("3"))
	case bytes.HasPrefix(data, []byte("1")), bytes.HasPrefix(data, []byte("41")):
		return errors.New("socket.io: the server closed the session")
	case !c.sender:
	case bytes.HasPrefix(data, []byte("43")): // an ack: 43<id>[{"ok":true}] or [{"error":"…"}]
		digits := bytes.IndexByte(data, '[')
		id, err := strconv.Atoi(string(data[2:max(digits, 2)]))
		var args []struct{ Error string }
		_ = json.Unmarshal(data[max(digits, 0):], &args)
		if err == nil && id >= 1 && len(args) > 0 {
			c.l.answered(phaseMeasure, id-1, args[0].Error)
		}
	default:
		var f struct{ Type, Nonce, Code string }
		if json.Unmarshal(data, &f) == nil && len(f.Nonce) > 1 && (f.Type == "ack" || f.Type == "error") {
			seq, err := strconv.Atoi(f.Nonce[1:])
			if err == nil {
				c.l.answered(f.Nonce[0], seq, f.Code)
			}
		}
	}
	return nil
}

// stampMark starts the stamp in a message's text (post).
const stampMark = `"text":"~`

// stamped counts a received message and its latency.
func (c *client) stamped(data []byte, now int64) {
	i := bytes.Index(data, []byte(stampMark))
	if i < 0 {
		return
	}
	stamp := data[i+len(stampMark):]
	end := bytes.IndexByte(stamp, '~')
	dot := bytes.IndexByte(stamp, '.')
	if end < 0 || dot < 1 || dot > end {
		return
	}
	seq, ok1 := digits(stamp[1:dot])
	sent, ok2 := digits(stamp[dot+1 : end])
	switch {
	case !ok1 || !ok2:
	case stamp[0] == phaseWarm:
		c.lastWarm.Store(max(c.lastWarm.Load(), seq))
	case stamp[0] == phaseMeasure && seq < int64(len(c.counts)):
		if c.counts[seq] < 255 {
			c.counts[seq]++
		}
		if c.counts[seq] == 1 {
			c.lat = append(c.lat, micros(now-sent))
			c.l.got.Add(1)
		}
	}
}

// digits parses a decimal number of at most 19 digits.
func digits(b []byte) (int64, bool) {
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, len(b) > 0 && len(b) <= 19
}

const filler = " chat benchmark message of about the length people type, padded to size"

// post sends message seq of phase, stamped with the time now. Socket.IO ack ids are
// seq+1 in the window and above 1<<30 in the warm-up.
func (c *client) post(phase byte, seq int) error {
	text := fmt.Sprintf("~%c%d.%d~", phase, seq, time.Now().UnixNano())
	for len(text) < c.l.spec.TextBytes {
		text += filler[:min(len(filler), c.l.spec.TextBytes-len(text))]
	}
	var frame []byte
	if c.l.spec.Proto == protoOnair {
		frame, _ = json.Marshal(map[string]string{"type": "message", "text": text, "nonce": string(phase) + strconv.Itoa(seq)})
	} else {
		id := seq + 1
		if phase == phaseWarm {
			id = 1<<30 + seq
		}
		args, _ := json.Marshal([]any{"msg", map[string]string{"room": "bench", "text": text}})
		frame = append([]byte("42"+strconv.Itoa(id)), args...)
	}
	return c.write(frame)
}
