package chat

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// chatLoad is the load generator's state.
type chatLoad struct {
	spec    chatLoadSpec
	n       int           // messages of the measured window
	clients []*chatClient // every receiver, the senders included
	senders []*chatClient
	groups  []string // group names, by chatClient.group

	sentAt    []atomic.Int64  // per message: send time, Unix ns
	answerAt  []atomic.Int64  // per message: when its ack or refusal came
	answer    []atomic.Uint32 // per message: 0 none yet, 1 acked, 2 refused
	acked     atomic.Int64
	refused   atomic.Int64
	delivered atomic.Int64 // first arrivals of measured messages, all clients
	closing   atomic.Bool

	mu        sync.Mutex
	refusedBy map[string]int
}

const (
	chatAnswerAck    = 1
	chatAnswerRefuse = 2
)

// runChatWorker is the load generator's main.
func runChatWorker(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewReader(stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("chat worker: read the spec: %w", err)
	}
	var spec chatLoadSpec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("chat worker: spec: %w", err)
	}
	l, err := newChatLoad(spec)
	if err != nil {
		return err
	}
	defer l.closeAll()

	joinStart := time.Now()
	if err := l.connect(ctx); err != nil {
		return err
	}
	joinS := time.Since(joinStart).Seconds()
	fmt.Fprintln(stdout, "READY")
	cmd, err := in.ReadString('\n')
	if err != nil || strings.TrimSpace(cmd) != "GO" {
		return fmt.Errorf("chat worker: expected GO, got %q (%v)", cmd, err)
	}
	warmStart := time.Now()
	warmSent, err := l.warmUp(ctx)
	if err != nil {
		return err
	}
	warmS := time.Since(warmStart).Seconds()
	fmt.Fprintln(stdout, "START")
	res := l.measure(ctx)
	fmt.Fprintln(stdout, "DONE")
	l.closeAll()
	l.collect(&res)
	res.JoinS, res.WarmupS, res.WarmupSent = joinS, warmS, warmSent
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("chat worker: %w", err)
	}
	fmt.Fprintln(stdout, "RESULT "+string(b))
	return ctx.Err()
}

func newChatLoad(spec chatLoadSpec) (*chatLoad, error) {
	switch {
	case spec.Proto != chatProtoOnair && spec.Proto != chatProtoSocketIO:
		return nil, fmt.Errorf("chat worker: unknown protocol %q", spec.Proto)
	case len(spec.Senders) == 0 || spec.Rate <= 0 || spec.Duration <= 0:
		return nil, errors.New("chat worker: needs senders, a rate and a duration")
	}
	spec.DialParallel = max(spec.DialParallel, 1)
	n := int(spec.Rate * spec.Duration.Seconds())
	l := &chatLoad{
		spec: spec, n: n,
		sentAt: make([]atomic.Int64, n), answerAt: make([]atomic.Int64, n), answer: make([]atomic.Uint32, n),
		refusedBy: map[string]int{},
	}
	for i, g := range spec.Groups {
		l.groups = append(l.groups, g.Name)
		for range g.Clients {
			l.clients = append(l.clients, l.newClient(i, false))
		}
	}
	l.groups = append(l.groups, "senders")
	for range spec.Senders {
		c := l.newClient(len(spec.Groups), true)
		l.clients = append(l.clients, c)
		l.senders = append(l.senders, c)
	}
	return l, nil
}

func (l *chatLoad) newClient(group int, sender bool) *chatClient {
	c := &chatClient{l: l, group: group, sender: sender, counts: make([]uint8, l.n),
		lat: make([]int32, 0, l.n), buf: make([]byte, 0, 512), done: make(chan struct{})}
	c.lastWarm.Store(-1)
	return c
}

// connect dials and joins every client, DialParallel at a time, within spec.Join.
func (l *chatLoad) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.spec.Join)
	defer cancel()
	deadline, _ := ctx.Deadline()
	sem := make(chan struct{}, l.spec.DialParallel)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i, c := range l.clients {
		url, cookie := "", ""
		if c.sender {
			s := l.spec.Senders[i-(len(l.clients)-len(l.senders))]
			url, cookie = s.URL, s.Cookie
		} else {
			url = l.spec.Groups[c.group].URL
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := l.connectOne(ctx, c, url, cookie, deadline)
			if err != nil {
				once.Do(func() { first = fmt.Errorf("chat worker: client %d: %w", i, err); cancel() })
			}
		})
	}
	wg.Wait()
	return first
}

func (l *chatLoad) connectOne(ctx context.Context, c *chatClient, url, cookie string, deadline time.Time) error {
	ws, err := oldkit.DialChat(ctx, url, cookie)
	if err != nil {
		return err
	}
	c.ws = ws
	if err := c.join(deadline, l.spec.Room); err != nil {
		return err
	}
	c.reading = true
	go c.read()
	return nil
}

// closeAll closes every connection and waits for the readers. Safe to call twice; call
// it only once connect has returned.
func (l *chatLoad) closeAll() {
	if l.closing.Swap(true) {
		return
	}
	for _, c := range l.clients {
		if c.ws != nil {
			_ = c.ws.Close()
		}
	}
	for _, c := range l.clients {
		if c.reading {
			<-c.done
		}
	}
}

// answered records the server's answer to message seq of phase.
func (l *chatLoad) answered(phase byte, seq int, code string, now int64) {
	if phase != chatPhaseMeasure || seq < 0 || seq >= l.n {
		return
	}
	v := uint32(chatAnswerAck)
	if code != "" {
		v = chatAnswerRefuse
	}
	if !l.answer[seq].CompareAndSwap(0, v) {
		return
	}
	l.answerAt[seq].Store(now)
	if code == "" {
		l.acked.Add(1)
		return
	}
	l.refused.Add(1)
	l.mu.Lock()
	l.refusedBy[code]++
	l.mu.Unlock()
}

// allWarm reports whether every client has received warm-up message seq or a later one.
func (l *chatLoad) allWarm(seq int64) (bool, int) {
	missing := 0
	for _, c := range l.clients {
		if c.lastWarm.Load() < seq {
			missing++
		}
	}
	return missing == 0, missing
}

// warmUp posts warm-up messages at the rate until every client has received one and
// spec.Warmup has passed since, then waits until every client has the last one (so that
// no warm-up traffic runs into the window). It returns how many it posted.
func (l *chatLoad) warmUp(ctx context.Context) (int, error) {
	interval := time.Duration(float64(time.Second) / l.spec.Rate)
	start := time.Now()
	var allSince time.Time
	seq := 0
	for {
		now := time.Now()
		if err := l.senders[seq%len(l.senders)].post(chatPhaseWarm, seq, now); err != nil {
			return seq, fmt.Errorf("chat worker: warm-up post: %w", err)
		}
		seq++
		if ok, _ := l.allWarm(0); ok && allSince.IsZero() {
			allSince = now
		}
		if !allSince.IsZero() && now.Sub(allSince) >= l.spec.Warmup {
			break
		}
		if now.Sub(start) > l.spec.WarmupMax {
			_, missing := l.allWarm(0)
			return seq, fmt.Errorf("chat worker: %d of %d clients received no warm-up message within %s", missing, len(l.clients), l.spec.WarmupMax)
		}
		if err := oldkit.SleepUntil(ctx, start.Add(time.Duration(seq)*interval)); err != nil {
			return seq, err
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, missing := l.allWarm(int64(seq - 1))
		if ok {
			return seq, nil
		}
		if time.Now().After(deadline) {
			return seq, fmt.Errorf("chat worker: %d of %d clients lack the last warm-up message 10 s after it was sent", missing, len(l.clients))
		}
		if err := oldkit.SleepUntil(ctx, time.Now().Add(5*time.Millisecond)); err != nil {
			return seq, err
		}
	}
}

// measure posts the window's messages on schedule, the senders in turn, then waits for
// the deliveries and acks.
func (l *chatLoad) measure(ctx context.Context) chatLoadResult {
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
				if err := s.post(chatPhaseMeasure, seq, now); err != nil {
					sendErrs.Add(1)
				}
			}
		})
	}
	sent := 0
	for seq := range l.n {
		if oldkit.SleepUntil(ctx, start.Add(time.Duration(seq)*interval)) != nil {
			break
		}
		queues[seq%len(queues)] <- seq
		sent++
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	lastSend := time.Now()
	res := chatLoadResult{Sent: sent, SendErrors: int(sendErrs.Load()), SendSlipMax: float64(slipMax.Load()) / 1e6,
		SendS: lastSend.Sub(start).Seconds(), Clients: len(l.clients)}
	posted := int64(sent - res.SendErrors)
	deadline := lastSend.Add(l.spec.Drain)
	for {
		acked := l.acked.Load()
		if acked+l.refused.Load() == posted && l.delivered.Load() == acked*int64(len(l.clients)) {
			res.Drained = true
			break
		}
		if time.Now().After(deadline) || oldkit.SleepUntil(ctx, time.Now().Add(2*time.Millisecond)) != nil {
			break
		}
	}
	res.WindowS = time.Since(start).Seconds()
	return res
}
