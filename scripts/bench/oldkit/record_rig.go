package oldkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// rigTool is the path of a server binary built by scripts/tools.sh.
func RigTool(root, name string) (string, error) {
	p := filepath.Join(root, ".tools", "bin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is not built: run scripts/tools.sh (make tools): %w", name, err)
	}
	return p, nil
}

// rigMongo is a FerretDB server.
type RigMongo struct {
	Proc *Process
	URI  string
}

// startRigMongo starts FerretDB with its SQLite files in dir and waits until it is ready.
// Capped collections are trimmed every second, as in the tests.
func StartRigMongo(ctx context.Context, bin, dir string) (*RigMongo, error) {
	return StartFerretDB(ctx, bin, dir, "--log-level=warn", "--test-capped-cleanup-interval=1s")
}

// startFerretDB starts FerretDB with its SQLite files in dir, on free loopback ports, with
// flags added, and waits until it is ready.
func StartFerretDB(ctx context.Context, bin, dir string, flags ...string) (*RigMongo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ferretdb: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	debugPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{
		"--handler=sqlite", "--sqlite-url=file:" + dir + "/", "--state-dir=" + dir,
		"--listen-addr=127.0.0.1:" + strconv.Itoa(port),
		"--debug-addr=127.0.0.1:" + strconv.Itoa(debugPort),
		"--telemetry=disable"}, flags...)...)
	proc, err := StartProcess("ferretdb", cmd)
	if err != nil {
		return nil, err
	}
	m := &RigMongo{Proc: proc, URI: fmt.Sprintf("mongodb://127.0.0.1:%d/?directConnection=true", port)}
	if err := WaitHTTP200(ctx, proc, fmt.Sprintf("http://127.0.0.1:%d/debug/readyz", debugPort), 15*time.Second); err != nil {
		m.Stop()
		return nil, fmt.Errorf("ferretdb: %w", err)
	}
	return m, nil
}

// Stop ends FerretDB.
func (m *RigMongo) Stop() { m.Proc.Stop(syscall.SIGTERM, 5*time.Second) }

// rigS3 is a MinIO server that can be killed and started again on the same port and data.
type RigS3 struct {
	bin, dir          string
	port, consolePort int
	proc              *Process
	Endpoint          string
}

const (
	rigS3User   = "onairbench"
	rigS3Secret = "onairbench-secret"
	rigS3Bucket = "recordings"
)

// startRigS3 starts MinIO with its data in dir and waits until it is ready.
func StartRigS3(ctx context.Context, bin, dir string) (*RigS3, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("minio: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	consolePort, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &RigS3{bin: bin, dir: dir, port: port, consolePort: consolePort,
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *RigS3) start(ctx context.Context) error {
	cmd := exec.Command(s.bin, "server", s.dir,
		"--address", "127.0.0.1:"+strconv.Itoa(s.port),
		"--console-address", "127.0.0.1:"+strconv.Itoa(s.consolePort), "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+rigS3User, "MINIO_ROOT_PASSWORD="+rigS3Secret,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	proc, err := StartProcess("minio", cmd)
	if err != nil {
		return err
	}
	s.proc = proc
	if err := WaitHTTP200(ctx, proc, s.Endpoint+"/minio/health/ready", 30*time.Second); err != nil {
		s.Kill()
		return fmt.Errorf("minio: %w", err)
	}
	return nil
}

// Kill ends MinIO at once (its process group), as an outage would.
func (s *RigS3) Kill() { s.proc.Stop(syscall.SIGKILL, 0) }

// Restart starts MinIO again on the same port and data and waits until it is ready.
func (s *RigS3) Restart(ctx context.Context) error {
	s.Kill()
	return s.start(ctx)
}

// Stop ends MinIO.
func (s *RigS3) Stop() { s.proc.Stop(syscall.SIGTERM, 5*time.Second) }

// Env configures onair to record into this MinIO.
func (s *RigS3) Env() []string {
	return []string{
		"ONAIR_STORAGE_BACKEND=s3", "ONAIR_STORAGE_S3_ENDPOINT=" + s.Endpoint,
		"ONAIR_STORAGE_S3_BUCKET=" + rigS3Bucket, "ONAIR_STORAGE_S3_PATH_STYLE=true",
		"ONAIR_STORAGE_S3_CREATE_BUCKET=true",
		"ONAIR_STORAGE_S3_ACCESS_KEY=" + rigS3User, "ONAIR_STORAGE_S3_SECRET_KEY=" + rigS3Secret,
	}
}

// rigStack is what the benchmarks of fresh onair nodes on FerretDB and MinIO share: the
// live benchmark's input, the onair binary under test copied into the run's directory
// (so that a rebuild during the run changes nothing), and the two stores.
type RigStack struct {
	Input string
	Bin   string
	Mongo *RigMongo
	S3    *RigS3
}

// launch prepares the stack in tmp for the binary cfg names, and describes the input and
// the binary in in and onair; Stop stops what it started, even after an error.
func (s *RigStack) Launch(ctx context.Context, root, tmp string, cfg RigFlags, in *InputInfo, onair *BinaryInfo) error {
	var err error
	if s.Input, *in, err = RigInput(ctx, root, cfg.OutDir); err != nil {
		return err
	}
	s.Bin = filepath.Join(tmp, "onair")
	if *onair, err = CopyBinary(cfg.Onair, s.Bin); err != nil {
		return err
	}
	onair.Path, _ = filepath.Rel(root, cfg.Onair)
	ferret, err := RigTool(root, "ferretdb")
	if err != nil {
		return err
	}
	minio, err := RigTool(root, "minio")
	if err != nil {
		return err
	}
	if s.Mongo, err = StartRigMongo(ctx, ferret, filepath.Join(tmp, "mongo")); err != nil {
		return err
	}
	s.S3, err = StartRigS3(ctx, minio, filepath.Join(tmp, "s3"))
	return err
}

// Stop stops MinIO and FerretDB, those that were started.
func (s *RigStack) Stop() {
	if s.S3 != nil {
		s.S3.Stop()
	}
	if s.Mongo != nil {
		s.Mongo.Stop()
	}
}
