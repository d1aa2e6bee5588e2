package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// tool returns a server binary built by scripts/tools.sh. Under `make test` it is always
// there; a missing one is a failure, never a skip.
func tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), ".tools", "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not built: run scripts/tools.sh (make test does): %v", name, err)
	}
	return p
}

// FreePort returns a TCP port that was free a moment ago on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Server is a process started for a test.
type Server struct {
	cmd  *exec.Cmd
	logs *Buffer
	done chan struct{}
	args []string
	bin  string
	env  []string
}

func startServer(t testing.TB, bin string, args, env []string) *Server {
	t.Helper()
	s := &Server{bin: bin, args: args, env: env}
	s.start(t)
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("%s logs:\n%s", filepath.Base(bin), s.logs.String())
		}
	})
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(os.Environ(), s.env...)
	if s.logs == nil {
		s.logs = &Buffer{}
	}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.bin, err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
}

// Kill stops the server at once (its whole process group).
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// Stop stops the server with SIGTERM, then SIGKILL after 10 s.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.Kill()
	}
}

// Restart starts the server again with the same arguments (same port, same data).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	s.start(t)
}

func waitHTTP200(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func() (bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, url + ": " + resp.Status
	})
}

// MongoDB is a FerretDB server (MongoDB wire protocol) with its own data directory.
type MongoDB struct {
	*Server
	// URI is the connection string.
	URI       string
	readyURL  string
	dataDir   string
	debugPort int
}

// StartMongoDB starts FerretDB on a free port with a fresh data directory.
func StartMongoDB(t testing.TB) *MongoDB {
	t.Helper()
	bin := tool(t, "ferretdb")
	dir := t.TempDir()
	port, debugPort := FreePort(t), FreePort(t)
	args := []string{
		"--handler=sqlite", "--sqlite-url=file:" + dir + "/", "--state-dir=" + dir,
		"--listen-addr=127.0.0.1:" + strconv.Itoa(port),
		"--debug-addr=127.0.0.1:" + strconv.Itoa(debugPort),
		"--telemetry=disable", "--log-level=warn", "--test-capped-cleanup-interval=1s",
	}
	m := &MongoDB{
		Server:    startServer(t, bin, args, nil),
		URI:       fmt.Sprintf("mongodb://127.0.0.1:%d/?directConnection=true", port),
		readyURL:  fmt.Sprintf("http://127.0.0.1:%d/debug/readyz", debugPort),
		dataDir:   dir,
		debugPort: debugPort,
	}
	m.WaitReady(t)
	return m
}

// WaitReady waits until the server answers its readiness probe.
func (m *MongoDB) WaitReady(t testing.TB) { waitHTTP200(t, m.readyURL, 15*time.Second) }

// Restart restarts FerretDB on the same port and data, and waits until it is ready.
func (m *MongoDB) Restart(t testing.TB) {
	t.Helper()
	m.Server.Restart(t)
	m.WaitReady(t)
}

// S3 is a MinIO server with a fresh data directory.
type S3 struct {
	*Server
	// Endpoint is the base URL, e.g. http://127.0.0.1:9000.
	Endpoint  string
	AccessKey string
	SecretKey string
	dataDir   string
}

// StartS3 starts MinIO on a free port with a fresh data directory.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := tool(t, "minio")
	dir := t.TempDir()
	port, consolePort := FreePort(t), FreePort(t)
	s := &S3{AccessKey: "onairtest", SecretKey: "onairtest-secret", dataDir: dir,
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port)}
	env := []string{"MINIO_ROOT_USER=" + s.AccessKey, "MINIO_ROOT_PASSWORD=" + s.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off"}
	args := []string{"server", dir, "--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort), "--quiet"}
	s.Server = startServer(t, bin, args, env)
	s.WaitReady(t)
	return s
}

// WaitReady waits until MinIO is ready.
func (s *S3) WaitReady(t testing.TB) {
	waitHTTP200(t, s.Endpoint+"/minio/health/ready", 30*time.Second)
}

// Restart restarts MinIO on the same port and data, and waits until it is ready.
func (s *S3) Restart(t testing.TB) {
	t.Helper()
	s.Server.Restart(t)
	s.WaitReady(t)
}

// Client connects to the server for a test, with short timeouts so that tests of outages
// see them quickly, and disconnects when the test ends.
func (m *MongoDB) Client(t testing.TB) *mongo.Client {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(m.URI).
		SetServerSelectionTimeout(2 * time.Second).SetConnectTimeout(time.Second).SetHeartbeatInterval(500 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	return client
}

var dbNameRE = regexp.MustCompile(`[^A-Za-z0-9]+`)

// Database is a database of its own for the test, named after it.
func (m *MongoDB) Database(t testing.TB, prefix string) *mongo.Database {
	t.Helper()
	name := prefix + "_" + dbNameRE.ReplaceAllString(t.Name(), "_")
	if len(name) > 60 {
		name = name[:60]
	}
	return m.Client(t).Database(name)
}
