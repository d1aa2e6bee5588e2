package main

// The servers behind the record, cluster-hls and web benchmarks: FerretDB (MongoDB's wire
// protocol) and MinIO (S3), built by scripts/tools.sh into .tools/bin, started here on
// free loopback ports with data directories of their own, and stopped (their process
// groups only) when the benchmark ends.

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
func rigTool(root, name string) (string, error) {
	p := filepath.Join(root, ".tools", "bin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is not built: run scripts/tools.sh (make tools): %w", name, err)
	}
	return p, nil
}

// rigMongo is a FerretDB server.
type rigMongo struct {
	proc *process
	URI  string
}

// startRigMongo starts FerretDB with its SQLite files in dir and waits until it is ready.
func startRigMongo(ctx context.Context, bin, dir string) (*rigMongo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ferretdb: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	debugPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"--handler=sqlite", "--sqlite-url=file:"+dir+"/", "--state-dir="+dir,
		"--listen-addr=127.0.0.1:"+strconv.Itoa(port),
		"--debug-addr=127.0.0.1:"+strconv.Itoa(debugPort),
		"--telemetry=disable", "--log-level=warn", "--test-capped-cleanup-interval=1s")
	proc, err := startProcess("ferretdb", cmd)
	if err != nil {
		return nil, err
	}
	m := &rigMongo{proc: proc, URI: fmt.Sprintf("mongodb://127.0.0.1:%d/?directConnection=true", port)}
	if err := waitHTTP200(ctx, proc, fmt.Sprintf("http://127.0.0.1:%d/debug/readyz", debugPort), 15*time.Second); err != nil {
		m.Stop()
		return nil, fmt.Errorf("ferretdb: %w", err)
	}
	return m, nil
}

// Stop ends FerretDB.
func (m *rigMongo) Stop() { m.proc.Stop(syscall.SIGTERM, 5*time.Second) }

// rigS3 is a MinIO server that can be killed and started again on the same port and data.
type rigS3 struct {
	bin, dir          string
	port, consolePort int
	proc              *process
	Endpoint          string
}

const (
	rigS3User   = "onairbench"
	rigS3Secret = "onairbench-secret"
	rigS3Bucket = "recordings"
)

// startRigS3 starts MinIO with its data in dir and waits until it is ready.
func startRigS3(ctx context.Context, bin, dir string) (*rigS3, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("minio: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	consolePort, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &rigS3{bin: bin, dir: dir, port: port, consolePort: consolePort,
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *rigS3) start(ctx context.Context) error {
	cmd := exec.Command(s.bin, "server", s.dir,
		"--address", "127.0.0.1:"+strconv.Itoa(s.port),
		"--console-address", "127.0.0.1:"+strconv.Itoa(s.consolePort), "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+rigS3User, "MINIO_ROOT_PASSWORD="+rigS3Secret,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	proc, err := startProcess("minio", cmd)
	if err != nil {
		return err
	}
	s.proc = proc
	if err := waitHTTP200(ctx, proc, s.Endpoint+"/minio/health/ready", 30*time.Second); err != nil {
		s.Kill()
		return fmt.Errorf("minio: %w", err)
	}
	return nil
}

// Kill ends MinIO at once (its process group), as an outage would.
func (s *rigS3) Kill() { s.proc.Stop(syscall.SIGKILL, 0) }

// Restart starts MinIO again on the same port and data and waits until it is ready.
func (s *rigS3) Restart(ctx context.Context) error {
	s.Kill()
	return s.start(ctx)
}

// Stop ends MinIO.
func (s *rigS3) Stop() { s.proc.Stop(syscall.SIGTERM, 5*time.Second) }

// Env configures onair to record into this MinIO.
func (s *rigS3) Env() []string {
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
type rigStack struct {
	input string
	bin   string
	mongo *rigMongo
	s3    *rigS3
}

// launch prepares the stack in tmp for the binary cfg names, and describes the input and
// the binary in in and onair; Stop stops what it started, even after an error.
func (s *rigStack) launch(ctx context.Context, root, tmp string, cfg rigFlags, in *inputInfo, onair *binaryInfo) error {
	var err error
	if s.input, *in, err = rigInput(ctx, root, cfg.outDir); err != nil {
		return err
	}
	s.bin = filepath.Join(tmp, "onair")
	if *onair, err = copyBinary(cfg.onair, s.bin); err != nil {
		return err
	}
	onair.Path, _ = filepath.Rel(root, cfg.onair)
	ferret, err := rigTool(root, "ferretdb")
	if err != nil {
		return err
	}
	minio, err := rigTool(root, "minio")
	if err != nil {
		return err
	}
	if s.mongo, err = startRigMongo(ctx, ferret, filepath.Join(tmp, "mongo")); err != nil {
		return err
	}
	s.s3, err = startRigS3(ctx, minio, filepath.Join(tmp, "s3"))
	return err
}

// Stop stops MinIO and FerretDB, those that were started.
func (s *rigStack) Stop() {
	if s.s3 != nil {
		s.s3.Stop()
	}
	if s.mongo != nil {
		s.mongo.Stop()
	}
}
