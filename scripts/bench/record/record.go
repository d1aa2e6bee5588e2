package record

import (
	"context"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// recordRun is one run of `bench record`.
type recordRun struct {
	cfg   recordConfig
	tmp   string
	onair string // the copy of the binary under test
	input string
	mongo *oldkit.RigMongo
	s3    *oldkit.RigS3
	api   *oldkit.RigAPI    // signed in on the first node; its session works on every node
	slugs []string          // the rooms of the load and outage phases
	keys  map[string]string // stream key by room
	res   *recordResults
	oldkit.RunLog
}

const (
	recordUser       = "bench"
	recordReplayRoom = "rec-replay"
)

// runRecord is `bench record`: what recording costs, what an S3 outage does to memory,
// and how soon a replay exists after the publisher leaves.
func RunRecord(ctx context.Context, args []string, root, command string, stdout, stderr io.Writer) error {
	cfg, err := parseRecordFlags(args, root, stderr)
	if err != nil {
		return err
	}
	r := &recordRun{cfg: cfg, keys: map[string]string{},
		res: &recordResults{Command: command, Started: time.Now().UTC().Format(time.RFC3339), Machine: oldkit.DescribeMachine(ctx), Streams: cfg.streams}}
	r.RunLog = oldkit.RunLog{Name: "record", Out: stderr, Errs: &r.res.Errors}
	if r.tmp, err = os.MkdirTemp("", "onair-bench-record-"); err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	defer os.RemoveAll(r.tmp)
	if err := r.setup(ctx, root); err != nil {
		r.teardown()
		return err
	}
	r.phaseOff(ctx)
	r.phaseOn(ctx)
	r.teardown()
	if err := ctx.Err(); err != nil {
		r.Fail(fmt.Errorf("bench record: stopped: %w", err))
	}
	return r.write(stdout)
}

// setup prepares the input and the binary, starts FerretDB and MinIO and creates the
// account and rooms.
func (r *recordRun) setup(ctx context.Context, root string) error {
	var err error
	if r.input, r.res.Input, err = oldkit.RigInput(ctx, root, r.cfg.OutDir); err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	r.onair = filepath.Join(r.tmp, "onair")
	if r.res.Onair, err = oldkit.CopyBinary(r.cfg.Onair, r.onair); err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	r.res.Onair.Path, _ = filepath.Rel(root, r.cfg.Onair)
	ferret, err := oldkit.RigTool(root, "ferretdb")
	if err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	minio, err := oldkit.RigTool(root, "minio")
	if err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	if r.mongo, err = oldkit.StartRigMongo(ctx, ferret, r.mkdir("mongo")); err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	if r.s3, err = oldkit.StartRigS3(ctx, minio, r.mkdir("s3")); err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	// The account and rooms live in MongoDB: created once through a first node.
	node, err := r.startNode(ctx, "setup")
	if err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	defer node.Stop()
	r.api, err = oldkit.NewRigAPI(node.HTTP)
	if err == nil {
		err = r.api.SignUp(ctx, recordUser)
	}
	for i := range r.cfg.streams {
		r.slugs = append(r.slugs, "rec-"+strconv.Itoa(i))
	}
	for _, slug := range append(r.slugs, recordReplayRoom) {
		if err != nil {
			break
		}
		r.keys[slug], err = r.api.CreateRoom(ctx, slug)
	}
	if err != nil {
		return fmt.Errorf("bench record: setup: %w", err)
	}
	return nil
}

func (r *recordRun) teardown() {
	if r.s3 != nil {
		r.s3.Stop()
	}
	if r.mongo != nil {
		r.mongo.Stop()
	}
}

// mkdir makes a fresh directory under the run's scratch directory; a failure shows when
// the server using it starts.
func (r *recordRun) mkdir(name string) string {
	dir, err := os.MkdirTemp(r.tmp, name+"-")
	if err != nil {
		return filepath.Join(r.tmp, name)
	}
	return dir
}

// startNode starts a fresh onair (its own data directory) recording into MinIO.
func (r *recordRun) startNode(ctx context.Context, name string) (*oldkit.RigNode, error) {
	return oldkit.StartRigNode(ctx, oldkit.RigNodeOptions{Binary: r.onair, DataDir: r.mkdir("onair-" + name),
		Mongo: r.mongo.URI, Env: r.s3.Env()})
}

// write prints the summary, saves the raw results and, after a run without errors,
// rewrites the bench:record section of BENCHMARKS.md.
func (r *recordRun) write(stdout io.Writer) error {
	r.res.Machine.LoadEnd = oldkit.LoadAvg()
	r.res.Finished = time.Now().UTC().Format(time.RFC3339)
	section := recordSection(r.res)
	fmt.Fprintln(stdout, section)
	return oldkit.RigWrite(r.cfg.RigFlags, r.res, len(r.res.Errors), section, r.Logf)
}
