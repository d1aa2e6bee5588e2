package cluster

import (
	"context"
	"fmt"
	"net/http"
	"onair/scripts/bench/benchkit"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// churnNodes is the size of the cluster whose nodes restart one after the other.
const churnNodes = 3

// churnConfig is the `cluster-churn` benchmark's settings.
type churnConfig struct {
	publishers, players                                        int
	warmup, steady, restartEvery, settle, cdnWarmup, cdnWindow time.Duration
	cdnPlayers                                                 []int
}

// churnRun is one run of `bench cluster-churn`.
type churnRun struct {
	*benchkit.Run
	cfg   churnConfig
	stack benchkit.Stack
	api   *benchkit.API
	addrs [churnNodes]string // each node's HTTP address, kept across its restarts
	keys  map[string]string  // stream key by room
	lb    churnLB
	lives [churnNodes]int // how many times each node has stopped
	start time.Time       // of the churn phase: results count seconds from here
	res   *churnResults
}

func nodeName(k int) string { return string(rune('A' + k)) }

const churnCDNRoom = "cdn"

func churnRoomName(i int) string { return "churn-" + strconv.Itoa(i) }

func (c *churnRun) since(t time.Time) float64 { return t.Sub(c.start).Seconds() }

// RunChurn is `bench cluster-churn`: three nodes restarted one after the other under
// publishers and players, then one node behind the CDN example.
func RunChurn(ctx context.Context, env benchkit.Env, args []string) error {
	// 12 publishers and 100 players; viewers counted after 15 s of playing, for 10 s
	// before the first restart and 15 s after the last node's return; a restart every
	// 30 s; then 10, 100 and 500 players behind the CDN, 20 s each after 5 s.
	cfg := churnConfig{publishers: 12, players: 100, warmup: 15 * time.Second, steady: 10 * time.Second, restartEvery: 30 * time.Second,
		settle: 15 * time.Second, cdnWarmup: 5 * time.Second, cdnWindow: 20 * time.Second, cdnPlayers: []int{10, 100, 500}}
	c := &churnRun{Run: benchkit.NewRun(env), cfg: cfg, res: &churnResults{}}
	if err := c.Start(ctx, args, &c.res.Head); err != nil {
		return err
	}
	defer c.Close()
	c.res.Publishers, c.res.Players, c.res.CDNWarmupS, c.res.CDNWindowS = cfg.publishers, cfg.players, cfg.cdnWarmup.Seconds(), cfg.cdnWindow.Seconds()
	if err := c.setup(ctx); err != nil {
		c.Fail(err)
	} else {
		if err := c.churn(ctx); err != nil {
			c.Fail(err)
		}
		if err := c.cdn(ctx); err != nil {
			c.Fail(fmt.Errorf("CDN: %w", err))
		}
	}
	for k := range churnNodes {
		c.stopNode(k)
	}
	c.stack.Stop()
	return c.Finish(ctx, c.res, func() string { return churnSection(c.res) })
}

// setup starts FerretDB, MinIO and the three nodes, and creates the rooms.
func (c *churnRun) setup(ctx context.Context) error {
	err := c.stack.Launch(ctx, c.Run, &c.res.Input)
	if err != nil {
		return err
	}
	for k := range churnNodes {
		c.addrs[k] = "127.0.0.1:" + strconv.Itoa(benchkit.FreePort())
		n, err := c.startNode(ctx, k)
		if err != nil {
			return fmt.Errorf("node %s: %w", nodeName(k), err)
		}
		c.lb.swap(k, n)
	}
	var slugs []string
	for i := range c.cfg.publishers {
		slugs = append(slugs, churnRoomName(i))
	}
	c.api, c.keys, err = benchkit.Account(ctx, "http://"+c.addrs[0], append(slugs, churnCDNRoom)...)
	return err
}

// startNode starts node k with the same settings at every start: its id, data directory
// and HTTP address, which it advertises to the other nodes.
func (c *churnRun) startNode(ctx context.Context, k int) (*benchkit.Node, error) {
	return benchkit.StartNode(ctx, benchkit.NodeOptions{Binary: c.Bin, Indexes: true, Env: append(append(
		benchkit.MongoEnv(filepath.Join(c.Tmp, "node-"+nodeName(k)), c.stack.Mongo.URI, "info"), c.stack.S3.Env()...),
		"ONAIR_HTTP_ADDR="+c.addrs[k], "ONAIR_NODE_ID=churn-"+nodeName(k), "ONAIR_NODE_ADVERTISE_URL=http://"+c.addrs[k])})
}

// churn publishes and plays on the three nodes, counts viewers, restarts each node in
// turn, counts viewers again once all are back, then checks the recordings.
func (c *churnRun) churn(ctx context.Context) error {
	c.start = time.Now()
	ferret, self := benchkit.StartMeter(c.stack.Mongo.Proc.Pid()), benchkit.StartMeter(os.Getpid())
	stop := make(chan struct{})
	var pubs sync.WaitGroup
	c.res.Rooms = make([]churnRoom, c.cfg.publishers)
	for i := range c.res.Rooms {
		c.res.Rooms[i].Room = churnRoomName(i)
		pubs.Go(func() { c.publish(stop, &c.res.Rooms[i], i%churnNodes) })
	}
	stopPubs := sync.OnceFunc(func() { close(stop); pubs.Wait() })
	defer stopPubs()
	for _, r := range c.res.Rooms {
		if err := c.api.WaitLive(ctx, r.Room, 30*time.Second); err != nil {
			return err
		}
	}
	c.Logf("%d rooms live on %d nodes; %d players", len(c.res.Rooms), churnNodes, c.cfg.players)
	// Room r's players watch through every node in turn, starting with its first origin.
	playCtx, stopPlayers := context.WithCancel(ctx)
	players, waitPlayers := benchkit.StartViewers(playCtx, c.cfg.players, func(i int) (int, int, string) {
		room, node := i%c.cfg.publishers, (i%c.cfg.publishers+i/c.cfg.publishers)%churnNodes
		return node, room, "http://" + c.addrs[node] + "/live/" + churnRoomName(room) + "/index.m3u8"
	})
	stopPlay := sync.OnceFunc(func() { stopPlayers(); waitPlayers() })
	defer stopPlay()

	err := benchkit.SleepUntil(ctx, time.Now().Add(c.cfg.warmup))
	c.res.SteadyFromS = c.since(time.Now())
	if err == nil {
		err = c.countViewers(ctx, &c.res.ViewersBefore, players)
	}
	for k := 0; k < churnNodes && err == nil; k++ {
		next := time.Now().Add(c.cfg.restartEvery)
		if err = c.restart(ctx, k); err == nil && k < churnNodes-1 {
			err = benchkit.SleepUntil(ctx, next)
		}
	}
	if err == nil {
		err = benchkit.SleepUntil(ctx, time.Now().Add(c.cfg.settle))
	}
	if err == nil {
		err = c.countViewers(ctx, &c.res.ViewersAfter, players)
	}
	// What was measured until an error is still worth reading.
	c.res.EndS = c.since(time.Now())
	stopPubs()
	stopPlay()
	c.res.MachineBusy, c.res.FerretCPU, c.res.BenchCPU = ferret.Busy(), ferret.Percent(), self.Percent()
	for _, p := range players {
		c.res.Rejoins += int(p.Rejoins.Load())
	}
	c.res.BaselineStallS = churnStalls(c.res, players, c.start)
	if rerr := c.checkRecordings(ctx); err == nil {
		err = rerr
	} else if rerr != nil {
		c.Fail(rerr)
	}
	// The CDN phase has a node of its own: leave it the machine.
	for k := range churnNodes {
		c.stopNode(k)
	}
	return err
}

// restart stops node k with SIGTERM, as a rolling update does, and starts it again under
// the same id, data directory and address.
func (c *churnRun) restart(ctx context.Context, k int) error {
	r := churnRestart{Node: nodeName(k), AtS: c.since(time.Now())}
	defer func() { c.res.Restarts = append(c.res.Restarts, r) }()
	if err := c.stopNode(k); err != nil {
		r.Exit = err.Error()
	}
	r.StopS = c.since(time.Now()) - r.AtS
	n, err := c.startNode(ctx, k)
	if err == nil {
		// Ready once it has finished what its spool held.
		if err = benchkit.WaitHTTP200(ctx, n.Proc, n.HTTP+"/readyz", time.Minute); err != nil {
			n.Stop()
		}
	}
	if err != nil {
		return fmt.Errorf("restart node %s: %w", r.Node, err)
	}
	r.StartS = c.since(time.Now()) - r.AtS - r.StopS
	c.lb.swap(k, n)
	c.Logf("node %s: stopped in %.1f s, ready %.1f s later", r.Node, r.StopS, r.StartS)
	return nil
}

// stopNode takes node k out of the balancer and stops it with SIGTERM (if it runs), and
// keeps the tail of its log for whoever looks into a stall or a missing recording. It
// returns how the node exited.
func (c *churnRun) stopNode(k int) error {
	n := c.lb.swap(k, nil)
	if n == nil {
		return nil
	}
	n.Stop()
	c.lives[k]++
	out := n.Proc.Output() // the last 64 KiB: the counts are floors
	c.res.HeartbeatsFailed += strings.Count(out, `"heartbeat not written"`)
	c.res.EndedAsSilent += strings.Count(out, `"broadcast ended: node stopped reporting"`)
	log := filepath.Join(c.Out, fmt.Sprintf("cluster-churn-node-%s-%d.log", nodeName(k), c.lives[k]))
	if err := os.WriteFile(log, []byte(out), 0o644); err != nil {
		c.Logf("keep node %s's log: %v", nodeName(k), err)
	}
	return n.Proc.Wait()
}

// publish runs room's publisher, first on node first, and whenever it is cut off starts
// it again at once on the node a load balancer picks, as OBS reconnects by itself.
func (c *churnRun) publish(stop <-chan struct{}, room *churnRoom, first int) {
	for {
		k, n := c.lb.pick(first)
		first = -1
		s := churnSession{Node: nodeName(k), StartS: c.since(time.Now())}
		// ffmpeg's progress tells how much media it sent; the wall clock would count its
		// start-up and any time it fell behind on a busy machine.
		p, err := benchkit.StartProcess("ffmpeg", exec.Command("ffmpeg", "-progress", "pipe:1", "-stats_period", "0.5", "-hide_banner", "-loglevel", "error",
			"-nostdin", "-re", "-stream_loop", "-1", "-i", c.stack.Input, "-c", "copy", "-f", "flv", n.PublishURL(c.keys[room.Room])))
		stopped := false
		if err == nil {
			select {
			case <-p.Done():
				if err = p.Wait(); err != nil {
					err = fmt.Errorf("%w: %s", err, benchkit.Tail(ffmpegErrors(p.Output()), 300))
				}
			case <-stop:
				stopped = true
				p.Stop(syscall.SIGTERM, 5*time.Second)
			}
			s.SentS = ffmpegSentS(p.Output())
		}
		s.EndS = c.since(time.Now())
		if err != nil {
			s.Exit = strings.ReplaceAll(err.Error(), c.keys[room.Room], "<key>")
		}
		c.lb.release(k)
		room.Sessions = append(room.Sessions, s)
		if stopped {
			return
		}
		if s.EndS-s.StartS < 5 { // refused or failed at once: OBS's retry delay
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// ffmpegSentS is the media an ffmpeg run with -progress wrote: its last out_time_us.
func ffmpegSentS(output string) float64 {
	output = "\n" + output
	i := strings.LastIndex(output, "\nout_time_us=")
	if i < 0 {
		return 0
	}
	us, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(output[i+len("\nout_time_us="):], "\n", 2)[0]), 10, 64)
	if err != nil {
		return 0
	}
	return float64(max(us, 0)) / 1e6
}

// ffmpegErrors leaves out the key=value lines of -progress.
func ffmpegErrors(output string) string {
	var out []string
	for _, l := range strings.Split(output, "\n") {
		if k, _, ok := strings.Cut(l, "="); !ok || strings.Contains(k, " ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// churnLB routes publishers to the nodes that are up, as a least-connections TCP load
// balancer does after its health checks. One node restarts at a time, so one is up.
type churnLB struct {
	mu    sync.Mutex
	nodes [churnNodes]*benchkit.Node // nil while down
	load  [churnNodes]int
}

// pick returns node prefer when it is up, else the node up with the fewest publishers.
func (b *churnLB) pick(prefer int) (int, *benchkit.Node) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := prefer
	if k < 0 || b.nodes[k] == nil {
		k = -1
		for i, n := range b.nodes {
			if n != nil && (k < 0 || b.load[i] < b.load[k]) {
				k = i
			}
		}
	}
	b.load[k]++
	return k, b.nodes[k]
}

func (b *churnLB) release(k int) {
	b.mu.Lock()
	b.load[k]--
	b.mu.Unlock()
}

// swap puts n (nil: down) in node k's place and returns what was there.
func (b *churnLB) swap(k int, n *benchkit.Node) *benchkit.Node {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.nodes[k]
	b.nodes[k] = n
	return old
}

// countViewers reads every room's viewer count through every node's API, every 2 s for
// the steady time, against the players that watch it. A read that fails three times in
// a second (MongoDB overloaded: 503) is counted as unread.
func (c *churnRun) countViewers(ctx context.Context, v *viewerSummary, players []*benchkit.Viewer) error {
	want := make([]int, c.cfg.publishers)
	for _, p := range players {
		want[p.Room]++
	}
	for until := time.Now().Add(c.cfg.steady); time.Now().Before(until); {
		next := time.Now().Add(2 * time.Second)
		for k, addr := range c.addrs {
			got, at := make([]int, len(want)), c.since(time.Now())
			for i := range want {
				var room struct {
					Viewers int `json:"viewers"`
				}
				read := func() error {
					return c.api.At("http://"+addr).Do(ctx, http.MethodGet, "/api/v1/rooms/"+churnRoomName(i), nil, &room, http.StatusOK)
				}
				err := read()
				for try := 1; err != nil && try < 3 && benchkit.SleepUntil(ctx, time.Now().Add(500*time.Millisecond)) == nil; try++ {
					err = read()
				}
				if got[i] = room.Viewers; err != nil {
					got[i] = -1
					c.Logf("viewers of %s through %s: %v", churnRoomName(i), nodeName(k), err)
				}
			}
			v.add(nodeName(k), at, got, want)
		}
		if err := benchkit.SleepUntil(ctx, next); err != nil {
			return err
		}
	}
	return nil
}

// checkRecordings waits until every broadcast of every room has a replay and adds up,
// per room, what the recordings hold. It asks once a second, each replay playlist until
// it answers: the nodes finishing the recordings share FerretDB with these reads.
func (c *churnRun) checkRecordings(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	ready := map[string]bool{} // broadcast ids
	for i := range c.res.Rooms {
		r := &c.res.Rooms[i]
		for {
			bs, err := c.api.Broadcasts(ctx, r.Room)
			r.Broadcasts, r.Ready, r.Recovered, r.RecordedS = len(bs), 0, 0, 0
			for _, b := range bs {
				for j, s := range r.Sessions {
					if at := c.since(b.Started); s.StartS <= at && at < s.EndS {
						r.Sessions[j].LiveS = at
					}
				}
				if !ready[b.ID] && b.Recording != nil {
					ready[b.ID], _ = c.api.ReplayReady(ctx, b)
				}
				if ready[b.ID] {
					r.Ready, r.RecordedS = r.Ready+1, r.RecordedS+float64(b.Recording.DurationMS)/1000
					r.Recovered += boolInt(b.Recording.Recovered)
				}
			}
			if err == nil && r.Broadcasts > 0 && r.Ready == r.Broadcasts {
				break
			}
			if benchkit.SleepUntil(ctx, time.Now().Add(time.Second)) != nil {
				return fmt.Errorf("room %s: %d of %d broadcasts with a replay 3 min after the publishers stopped (%v)", r.Room, r.Ready, r.Broadcasts, err)
			}
		}
	}
	return nil
}
