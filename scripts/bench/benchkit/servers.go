package benchkit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Node is a running onair.
type Node struct {
	Proc       *Process
	DataDir    string
	HTTP       string // http://host:port
	RTMP       string // rtmp://host:port/app
	MetricsURL string // http://host:port of the metrics listener
}

// NodeOptions configure StartNode.
type NodeOptions struct {
	Binary string
	Args   []string
	// Env adds ONAIR_* variables to this process's environment and free loopback ports
	// for HTTP, RTMP and metrics (later entries win). Every publisher of a run dials
	// from 127.0.0.1, so the per-address connection limit, meant for the internet, is
	// lifted to the global one unless Env says otherwise.
	Env []string
	// Indexes waits until onair has made its MongoDB indexes (an info line of its log);
	// otherwise it waits until ReadyPath (default /healthz) answers 200.
	Indexes   bool
	ReadyPath string
}

// MongoEnv is the environment of a node with MongoDB at uri, its data in dataDir.
func MongoEnv(dataDir, uri, logLevel string) []string {
	return []string{"ONAIR_DATA_DIR=" + dataDir, "ONAIR_MONGO_URI=" + uri, "ONAIR_MONGO_DATABASE=onair", "ONAIR_LOG_LEVEL=" + logLevel}
}

// bannerRE finds the RTMP URL, the HTTP origin and the metrics listener in what onair
// prints at start (cmd/onair/main.go: printBanner).
var bannerRE = regexp.MustCompile(`(?m)^OBS server: (\S+)\n(?:OBS server over TLS: \S+\n)?(?:stream key: \S+\n)?` +
	`watch: (https?://[^/\s]+)\S*\n(?:plain http: .*\n)?metrics: (\S+)\n`)

// StartNode starts onair and waits until it is ready.
func StartNode(ctx context.Context, opts NodeOptions) (*Node, error) {
	cmd := exec.Command(opts.Binary, opts.Args...)
	cmd.Env = append(append(os.Environ(), "ONAIR_HTTP_ADDR=127.0.0.1:0", "ONAIR_RTMP_ADDR=127.0.0.1:0",
		"ONAIR_METRICS_ADDR=127.0.0.1:0", "ONAIR_RTMP_MAX_CONNECTIONS_PER_ADDRESS=1000"), opts.Env...)
	n := &Node{}
	for _, e := range cmd.Env {
		if v, ok := strings.CutPrefix(e, "ONAIR_DATA_DIR="); ok {
			n.DataDir = v
		}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if n.Proc, err = StartProcess("onair", cmd); err != nil {
		return nil, err
	}
	banner := make(chan []string, 1)
	go func() {
		var seen strings.Builder
		for sc := bufio.NewScanner(stdout); sc.Scan(); {
			if seen.Len() < 4096 {
				seen.WriteString(sc.Text() + "\n")
				if m := bannerRE.FindStringSubmatch(seen.String()); m != nil {
					banner <- m
					seen.WriteString(strings.Repeat(" ", 4096))
				}
			}
		}
	}()
	select {
	case m := <-banner:
		n.RTMP, n.HTTP, n.MetricsURL = m[1], m[2], strings.TrimSuffix(m[3], "/metrics")
	case <-time.After(20 * time.Second):
		n.Stop()
		return nil, fmt.Errorf("onair printed no banner within 20 s: %s", n.Proc.Output())
	case <-n.Proc.Done():
		return nil, n.Proc.Alive()
	}
	ready := func() error { return expectStatus(ctx, n.HTTP+cmp.Or(opts.ReadyPath, "/healthz"), http.StatusOK) }
	if opts.Indexes {
		ready = func() error {
			if !strings.Contains(n.Proc.Output(), "MongoDB ready") {
				return errors.New(`no "MongoDB ready" in its log yet`)
			}
			return nil
		}
	}
	if err := WaitReady(ctx, n.Proc, time.Minute, ready); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

// PublishURL is where a publisher with key sends.
func (n *Node) PublishURL(key string) string { return strings.TrimSuffix(n.RTMP, "/") + "/" + key }

// ChatURL is the websocket URL of a room's chat.
func (n *Node) ChatURL(slug string) string {
	return "ws" + strings.TrimPrefix(n.HTTP, "http") + "/api/v1/rooms/" + slug + "/chat"
}

func (n *Node) Pid() int     { return n.Proc.Pid() }
func (n *Node) Alive() error { return n.Proc.Alive() }

// Stop ends onair with SIGTERM (it ends its streams and finishes their recordings), then
// SIGKILL after 30 s.
func (n *Node) Stop() { n.Proc.Stop(syscall.SIGTERM, 30*time.Second) }

// Metrics fetches /metrics from the metrics listener.
func (n *Node) Metrics(ctx context.Context) (string, error) {
	b, _, err := HTTPGet(ctx, http.DefaultClient, n.MetricsURL+"/metrics")
	return string(b), err
}

// PromByLabel sums the samples of metric name in Prometheus' text format by their
// labels, e.g. `kind="part"`; an unlabelled sample is under "".
func PromByLabel(text, name string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.SplitSeq(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		labels := ""
		if end := strings.LastIndexByte(rest, '}'); rest[0] == '{' && end > 0 {
			labels, rest = rest[1:end], rest[end+1:]
		}
		if f := strings.Fields(rest); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				out[labels] += v
			}
		}
	}
	return out
}

// PromValue is the value of the unlabelled sample name.
func PromValue(text, name string) (float64, bool) {
	v, ok := PromByLabel(text, name)[""]
	return v, ok
}

// Tool is the path of a server binary built by scripts/tools.sh into .tools/bin.
func Tool(root, name string) (string, error) {
	p := filepath.Join(root, ".tools", "bin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is not built: run scripts/tools.sh (make tools): %w", name, err)
	}
	return p, nil
}

// Mongo is a FerretDB server (MongoDB's wire protocol) on free loopback ports.
type Mongo struct {
	Proc *Process
	URI  string
}

// StartFerretDB starts FerretDB with its SQLite files in dir and flags added.
func StartFerretDB(ctx context.Context, root, dir string, flags ...string) (*Mongo, error) {
	bin, err := Tool(root, "ferretdb")
	if err != nil {
		return nil, err
	}
	port, debug := FreePort(), FreePort()
	cmd := exec.Command(bin, append([]string{"--handler=sqlite", "--sqlite-url=file:" + dir + "/", "--state-dir=" + dir,
		"--listen-addr=127.0.0.1:" + strconv.Itoa(port), "--debug-addr=127.0.0.1:" + strconv.Itoa(debug), "--telemetry=disable"}, flags...)...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := &Mongo{URI: fmt.Sprintf("mongodb://127.0.0.1:%d/?directConnection=true", port)}
	if m.Proc, err = StartProcess("ferretdb", cmd); err != nil {
		return nil, err
	}
	if err := WaitHTTP200(ctx, m.Proc, fmt.Sprintf("http://127.0.0.1:%d/debug/readyz", debug), 15*time.Second); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// StartMongo starts FerretDB for a benchmark: capped collections trimmed every second,
// as in the tests.
func StartMongo(ctx context.Context, root, dir string) (*Mongo, error) {
	return StartFerretDB(ctx, root, dir, "--log-level=warn", "--test-capped-cleanup-interval=1s")
}

func (m *Mongo) Stop() { m.Proc.Stop(syscall.SIGTERM, 5*time.Second) }

// S3 is a MinIO server that can be killed and started again on the same port and data.
type S3 struct {
	Proc                *Process
	bin, dir            string
	Endpoint, consoleAt string
}

// StartS3 starts MinIO with its data in dir.
func StartS3(ctx context.Context, root, dir string) (*S3, error) {
	bin, err := Tool(root, "minio")
	if err != nil {
		return nil, err
	}
	s := &S3{bin: bin, dir: dir, Endpoint: fmt.Sprintf("http://127.0.0.1:%d", FreePort()), consoleAt: fmt.Sprintf("127.0.0.1:%d", FreePort())}
	return s, s.start(ctx)
}

func (s *S3) start(ctx context.Context) error {
	cmd := exec.Command(s.bin, "server", s.dir, "--address", strings.TrimPrefix(s.Endpoint, "http://"), "--console-address", s.consoleAt, "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER=onairbench", "MINIO_ROOT_PASSWORD=onairbench-secret", "MINIO_BROWSER=off", "MINIO_UPDATE=off")
	var err error
	if s.Proc, err = StartProcess("minio", cmd); err != nil {
		return err
	}
	return WaitHTTP200(ctx, s.Proc, s.Endpoint+"/minio/health/ready", 30*time.Second)
}

// Kill ends MinIO at once (its process group), as an outage would.
func (s *S3) Kill() { s.Proc.Stop(syscall.SIGKILL, 0) }

// Restart starts MinIO again on the same port and data.
func (s *S3) Restart(ctx context.Context) error {
	s.Kill()
	return s.start(ctx)
}

func (s *S3) Stop() { s.Proc.Stop(syscall.SIGTERM, 5*time.Second) }

// Env configures onair to record into this MinIO.
func (s *S3) Env() []string {
	return []string{"ONAIR_STORAGE_BACKEND=s3", "ONAIR_STORAGE_S3_ENDPOINT=" + s.Endpoint, "ONAIR_STORAGE_S3_BUCKET=recordings",
		"ONAIR_STORAGE_S3_PATH_STYLE=true", "ONAIR_STORAGE_S3_CREATE_BUCKET=true",
		"ONAIR_STORAGE_S3_ACCESS_KEY=onairbench", "ONAIR_STORAGE_S3_SECRET_KEY=onairbench-secret"}
}

// Stack is what the benchmarks of fresh onair nodes on FerretDB and MinIO share: the
// input and the two stores.
type Stack struct {
	Input string
	Mongo *Mongo
	S3    *S3
}

// Launch encodes the input unless it exists and starts the stores in r's scratch
// directory; Stop stops what it started, even after an error.
func (s *Stack) Launch(ctx context.Context, r *Run, in *Input) error {
	var err error
	if s.Input, *in, err = PrepareInput(ctx, r); err != nil {
		return err
	}
	if s.Mongo, err = StartMongo(ctx, r.Root, filepath.Join(r.Tmp, "mongo")); err != nil {
		return err
	}
	s.S3, err = StartS3(ctx, r.Root, filepath.Join(r.Tmp, "s3"))
	return err
}

// Node starts onair on the stack, its data in the run's directory under name.
func (s *Stack) Node(ctx context.Context, r *Run, name string, env ...string) (*Node, error) {
	return StartNode(ctx, NodeOptions{Binary: r.Bin, Indexes: true,
		Env: append(append(MongoEnv(filepath.Join(r.Tmp, "onair-"+name), s.Mongo.URI, "info"), s.S3.Env()...), env...)})
}

func (s *Stack) Stop() {
	if s.S3 != nil && s.S3.Proc != nil {
		s.S3.Stop()
	}
	if s.Mongo != nil {
		s.Mongo.Stop()
	}
}

// FreePort asks the kernel for a free loopback port; another process could take it
// before the server binds it, which the server's start then reports.
func FreePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Poll calls try, with a context that ends with timeout, every interval until it returns
// nil or a *Stop, or the context ends; it returns try's last error (a Stop's own).
func Poll(ctx context.Context, timeout, interval time.Duration, try func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := try(ctx)
		var stop *Stop
		if errors.As(err, &stop) {
			return stop.Err
		}
		if err == nil || SleepUntil(ctx, time.Now().Add(interval)) != nil {
			return err
		}
	}
}

// Stop ends a Poll at once with Err.
type Stop struct{ Err error }

func (s *Stop) Error() string { return fmt.Sprint(s.Err) }

// WaitReady polls ready every 50 ms until it returns nil, p exits or timeout passes.
func WaitReady(ctx context.Context, p *Process, timeout time.Duration, ready func() error) error {
	err := Poll(ctx, timeout, 50*time.Millisecond, func(context.Context) error {
		if err := p.Alive(); err != nil {
			return &Stop{err}
		}
		return ready()
	})
	if err != nil && p.Alive() == nil {
		return fmt.Errorf("%s not ready within %s: %w\n%s", p.Name, timeout, err, Tail(p.Output(), 2000))
	}
	return err
}

// WaitHTTP200 waits until url answers 200, p exits or timeout passes.
func WaitHTTP200(ctx context.Context, p *Process, url string, timeout time.Duration) error {
	return WaitReady(ctx, p, timeout, func() error { return expectStatus(ctx, url, http.StatusOK) })
}

func expectStatus(ctx context.Context, url string, want int) error {
	code, err := HTTPStatus(ctx, http.DefaultClient, url)
	if err == nil && code != want {
		err = fmt.Errorf("GET %s: HTTP %d", url, code)
	}
	return err
}

// NewHTTPClient returns a client for loopback servers: no proxy, enough idle connections
// for a player's parallel part requests.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second, DisableCompression: true}}
}

// StatusError is an HTTP answer other than 200.
type StatusError struct {
	URL  string
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("GET %s: HTTP %d", e.URL, e.Code) }

// HTTPGet fetches url (within 15 s, blocking playlist requests included) and returns the
// body and the time its last byte arrived.
func HTTPGet(ctx context.Context, client *http.Client, url string) ([]byte, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	arrived := time.Now()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, &StatusError{URL: url, Code: resp.StatusCode}
	}
	return body, arrived, nil
}

// HTTPGetUntilFound retries url every interval while it answers 404 or 503 (the stream
// is not there yet, or onair's "stream is starting").
func HTTPGetUntilFound(ctx context.Context, client *http.Client, url string, interval time.Duration) ([]byte, error) {
	for {
		body, _, err := HTTPGet(ctx, client, url)
		var se *StatusError
		if !errors.As(err, &se) || (se.Code != http.StatusNotFound && se.Code != http.StatusServiceUnavailable) {
			return body, err
		}
		if err := SleepUntil(ctx, time.Now().Add(interval)); err != nil {
			return nil, fmt.Errorf("GET %s: still %d: %w", url, se.Code, err)
		}
	}
}

// HTTPStatus returns the status of GET url.
func HTTPStatus(ctx context.Context, client *http.Client, url string) (int, error) {
	_, _, err := HTTPGet(ctx, client, url)
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code, nil
	}
	if err != nil {
		return 0, err
	}
	return http.StatusOK, nil
}

// Wrk describes an HTTP load: Connections viewers on Threads threads for Duration, each
// connection requesting Paths in turn with Headers (a player's cookie).
type Wrk struct {
	Threads, Connections int
	Duration             time.Duration
	Paths                []string
	Headers              map[string]string
}

// WrkResult is what wrk reported.
type WrkResult struct {
	Requests                                        int64
	Seconds, RPS                                    float64
	Non2xx                                          int64
	SocketErrs, LatencyP50, LatencyP99, BytesPerSec string
}

// Args is the command line (after "wrk") against base with script.
func (w Wrk) Args(script, base string) []string {
	return []string{"-t" + strconv.Itoa(w.Threads), "-c" + strconv.Itoa(w.Connections),
		"-d" + strconv.Itoa(int(w.Duration.Seconds())) + "s", "--latency", "-s", script, base}
}

var wrkRE = regexp.MustCompile(`(\d+) requests in ([\d.]+)(ms|s|m),(?s:.*)Requests/sec:\s+([\d.]+)\s+Transfer/sec:\s+(\S+)`)

// Run runs wrk against base (http://host:port) from dir and parses its report; non-2xx
// answers and socket errors are an error.
func (w Wrk) Run(ctx context.Context, dir, base string) (WrkResult, error) {
	var script bytes.Buffer
	for k, v := range w.Headers {
		fmt.Fprintf(&script, "wrk.headers[%q] = %q\n", k, v)
	}
	script.WriteString("local paths = {")
	for i, p := range w.Paths {
		fmt.Fprintf(&script, "%s%q", map[bool]string{true: "", false: ", "}[i == 0], p)
	}
	script.WriteString("}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n")
	path := filepath.Join(dir, "paths.lua")
	if err := os.WriteFile(path, script.Bytes(), 0o644); err != nil {
		return WrkResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.Duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", w.Args(path, base)...)
	cmd.SysProcAttr = ChildAttr()
	b, err := cmd.CombinedOutput()
	out := string(b)
	m := wrkRE.FindStringSubmatch(out)
	if err != nil || m == nil {
		return WrkResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	r := WrkResult{BytesPerSec: m[5]}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	r.Seconds, _ = strconv.ParseFloat(m[2], 64)
	r.Seconds *= map[string]float64{"ms": 0.001, "s": 1, "m": 60}[m[3]]
	r.RPS, _ = strconv.ParseFloat(m[4], 64)
	find := func(re string) string {
		if m := regexp.MustCompile(re).FindStringSubmatch(out); m != nil {
			return strings.TrimSpace(m[1])
		}
		return ""
	}
	r.Non2xx, _ = strconv.ParseInt(find(`Non-2xx or 3xx responses: (\d+)`), 10, 64)
	r.SocketErrs, r.LatencyP50, r.LatencyP99 = find(`Socket errors: ([^\n]+)`), find(`(?m)^\s+50%\s+(\S+)`), find(`(?m)^\s+99%\s+(\S+)`)
	if r.Non2xx > 0 || r.SocketErrs != "" {
		return r, fmt.Errorf("wrk: %d non-2xx answers, socket errors %q", r.Non2xx, r.SocketErrs)
	}
	return r, nil
}
