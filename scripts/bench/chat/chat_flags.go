package chat

import (
	"flag"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// chatLoadFlags are the load settings `chat` and `cluster-chat` share.
type chatLoadFlags struct {
	rate      float64
	duration  time.Duration
	warmup    time.Duration
	drain     time.Duration
	textBytes int
}

func (c *chatLoadFlags) register(fs *flag.FlagSet, rate float64) {
	fs.Float64Var(&c.rate, "rate", rate, "messages per second, over all senders")
	fs.DurationVar(&c.duration, "duration", 30*time.Second, "measured window: messages are posted this long")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "posting at the rate before the window, once every client receives")
	fs.DurationVar(&c.drain, "drain", 10*time.Second, "after the last post, wait this long at most for deliveries and acks")
	fs.IntVar(&c.textBytes, "text", 64, "bytes of each message's text (its stamp included)")
}

func (c *chatLoadFlags) check(name string) error {
	if c.rate <= 0 || c.duration < time.Second || c.warmup < 0 || c.drain <= 0 || c.textBytes < 40 || c.textBytes > 500 {
		return fmt.Errorf("bench %s: -rate, -duration (at least 1s), -drain must be positive, -text 40..500", name)
	}
	return nil
}

// spec is the load generator's spec for these settings (groups and senders added by the
// caller).
func (c *chatLoadFlags) spec(proto string) chatLoadSpec {
	return chatLoadSpec{
		Proto: proto, Room: "bench",
		Rate: c.rate, Duration: c.duration, Warmup: c.warmup, WarmupMax: c.warmup + 20*time.Second,
		Drain: c.drain, Join: 90 * time.Second, TextBytes: c.textBytes, DialParallel: 32,
	}
}

// chatOutFlags are where results go.
type chatOutFlags struct {
	onair    string
	outDir   string
	markdown string
	writeMD  bool
}

func (c *chatOutFlags) register(fs *flag.FlagSet, root, name string) {
	fs.StringVar(&c.onair, "onair", "", "onair binary to measure (make build writes bin/onair)")
	fs.StringVar(&c.outDir, "out", filepath.Join(root, ".artifacts", "bench"), "directory for "+name+".json")
	fs.StringVar(&c.markdown, "benchmarks", filepath.Join(root, "BENCHMARKS.md"), "Markdown file whose bench:"+name+" section is rewritten")
	fs.BoolVar(&c.writeMD, "write", true, "rewrite the bench:"+name+" section of -benchmarks (only after a run without errors)")
}

func (c *chatOutFlags) check(name string) error {
	if c.onair == "" {
		return fmt.Errorf("bench %s: -onair is required (run make build, then -onair bin/onair)", name)
	}
	abs, err := filepath.Abs(c.onair)
	if err != nil {
		return fmt.Errorf("bench %s: %w", name, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("bench %s: onair binary: %w (run make build first)", name, err)
	}
	c.onair = abs
	if err := os.MkdirAll(c.outDir, 0o755); err != nil {
		return fmt.Errorf("bench %s: %w", name, err)
	}
	return nil
}

// chatConfig is the `chat` benchmark's command line.
type chatConfig struct {
	out     chatOutFlags
	load    chatLoadFlags
	readers int
	senders int
	idle    time.Duration
	servers []string
	worker  bool
}

// chatServers are the servers `bench chat` measures, in order.
func chatServers() []string { return []string{oldkit.NameOnair, nameSocketIO} }

const nameSocketIO = "socket.io"

func parseChatFlags(args []string, root string, stderr io.Writer) (chatConfig, error) {
	fs := flag.NewFlagSet("bench chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c chatConfig
	c.out.register(fs, root, "chat")
	c.load.register(fs, 100)
	fs.IntVar(&c.readers, "readers", 1000, "anonymous reading clients in the room")
	fs.IntVar(&c.senders, "senders", 10, "signed-in posting clients (extra sockets, reading too); they post in turn")
	fs.DurationVar(&c.idle, "idle", 5*time.Second, "measure idle CPU this long with every client connected, before the warm-up")
	servers := fs.String("servers", strings.Join(chatServers(), ","), "servers to measure; BENCHMARKS.md is only rewritten when both ran")
	fs.BoolVar(&c.worker, "worker", false, "internal: be the load generator (spec on stdin; started by the benchmark itself)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("bench chat: unexpected arguments %q", fs.Args())
	}
	if c.worker {
		return c, nil
	}
	for _, s := range strings.Split(*servers, ",") {
		if !slices.Contains(chatServers(), s) {
			return c, fmt.Errorf("bench chat: -servers: unknown server %q (want some of %s)", s, strings.Join(chatServers(), ","))
		}
		c.servers = append(c.servers, s)
	}
	if c.readers < 1 || c.senders < 1 {
		return c, fmt.Errorf("bench chat: -readers and -senders must be positive")
	}
	if err := c.load.check("chat"); err != nil {
		return c, err
	}
	return c, c.out.check("chat")
}

// clusterChatConfig is the `cluster-chat` benchmark's command line.
type clusterChatConfig struct {
	out    chatOutFlags
	load   chatLoadFlags
	remote int
	local  int
	idle   time.Duration
}

func parseClusterChatFlags(args []string, root string, stderr io.Writer) (clusterChatConfig, error) {
	fs := flag.NewFlagSet("bench cluster-chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c clusterChatConfig
	c.out.register(fs, root, "cluster-chat")
	c.load.register(fs, 20)
	fs.IntVar(&c.remote, "receivers", 100, "anonymous reading clients on node B (the sender is on node A)")
	fs.IntVar(&c.local, "local", 10, "anonymous reading clients on node A, for comparison (0: none)")
	fs.DurationVar(&c.idle, "idle", 3*time.Second, "measure idle CPU this long with every client connected, before the warm-up")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("bench cluster-chat: unexpected arguments %q", fs.Args())
	}
	if c.remote < 1 || c.local < 0 {
		return c, fmt.Errorf("bench cluster-chat: -receivers must be positive, -local at least 0")
	}
	if err := c.load.check("cluster-chat"); err != nil {
		return c, err
	}
	return c, c.out.check("cluster-chat")
}
