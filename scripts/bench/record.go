package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	mongo *rigMongo
	s3    *rigS3
	api   *rigAPI           // signed in on the first node; its session works on every node
	slugs []string          // the rooms of the load and outage phases
	keys  map[string]string // stream key by room
	res   *recordResults
	runLog
}

const (
	recordUser       = "bench"
	recordReplayRoom = "rec-replay"
)

// runRecord is `bench record`: what recording costs, what an S3 outage does to memory,
// and how soon a replay exists after the publisher leaves.
func runRecord(ctx context.Context, args []string, root, command string, stdout, stderr io.Writer) error {
	cfg, err := parseRecordFlags(args, root, stderr)
	if err != nil {
		return err
	}
	r := &recordRun{cfg: cfg, keys: map[string]string{},
		res: &recordResults{Command: command, Started: time.Now().UTC().Format(time.RFC3339), Machine: describeMachine(ctx), Streams: cfg.streams}}
	r.runLog = runLog{name: "record", out: stderr, errs: &r.res.Errors}
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
		r.fail(fmt.Errorf("bench record: stopped: %w", err))
	}
	return r.write(stdout)
}

// setup prepares the input and the binary, starts FerretDB and MinIO and creates the
// account and rooms.
func (r *recordRun) setup(ctx context.Context, root string) error {
	var err error
	if r.input, r.res.Input, err = rigInput(ctx, root, r.cfg.outDir); err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	r.onair = filepath.Join(r.tmp, "onair")
	if r.res.Onair, err = copyBinary(r.cfg.onair, r.onair); err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	r.res.Onair.Path, _ = filepath.Rel(root, r.cfg.onair)
	ferret, err := rigTool(root, "ferretdb")
	if err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	minio, err := rigTool(root, "minio")
	if err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	if r.mongo, err = startRigMongo(ctx, ferret, r.mkdir("mongo")); err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	if r.s3, err = startRigS3(ctx, minio, r.mkdir("s3")); err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	// The account and rooms live in MongoDB: created once through a first node.
	node, err := r.startNode(ctx, "setup")
	if err != nil {
		return fmt.Errorf("bench record: %w", err)
	}
	defer node.Stop()
	r.api, err = newRigAPI(node.HTTP)
	if err == nil {
		err = r.api.signUp(ctx, recordUser)
	}
	for i := range r.cfg.streams {
		r.slugs = append(r.slugs, "rec-"+strconv.Itoa(i))
	}
	for _, slug := range append(r.slugs, recordReplayRoom) {
		if err != nil {
			break
		}
		r.keys[slug], err = r.api.createRoom(ctx, slug)
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
func (r *recordRun) startNode(ctx context.Context, name string) (*rigNode, error) {
	return startRigNode(ctx, rigNodeOptions{binary: r.onair, dataDir: r.mkdir("onair-" + name),
		mongo: r.mongo.URI, env: r.s3.Env()})
}

// write prints the summary, saves the raw results and, after a run without errors,
// rewrites the bench:record section of BENCHMARKS.md.
func (r *recordRun) write(stdout io.Writer) error {
	r.res.Machine.LoadEnd = loadAvg()
	r.res.Finished = time.Now().UTC().Format(time.RFC3339)
	section := recordSection(r.res)
	fmt.Fprintln(stdout, section)
	return rigWrite(r.cfg.rigFlags, r.res, len(r.res.Errors), section, r.logf)
}

// rigWrite saves res as <out>/<name>.json and, when the run had no errors, rewrites the
// bench:<name> section of the Markdown file.
func rigWrite(c rigFlags, res any, errs int, section string, logf func(string, ...any)) error {
	if err := os.MkdirAll(c.outDir, 0o755); err != nil {
		return fmt.Errorf("bench %s: %w", c.name, err)
	}
	jsonPath := filepath.Join(c.outDir, c.name+".json")
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("bench %s: %w", c.name, err)
	}
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench %s: %w", c.name, err)
	}
	logf("raw results: %s", jsonPath)
	switch {
	case errs > 0:
		return fmt.Errorf("bench %s: %d measurement(s) failed; %s left unchanged", c.name, errs, c.markdown)
	case c.writeMD:
		if err := updateSection(c.markdown, c.name, benchmarksIntro, section); err != nil {
			return err
		}
		logf("wrote the bench:%s section of %s", c.name, c.markdown)
	}
	return nil
}

// rigInput encodes the live benchmark's input unless it exists (see ensureInput), and
// returns its path and description.
func rigInput(ctx context.Context, root, outDir string) (string, inputInfo, error) {
	path := filepath.Join(outDir, "input-720p30.flv")
	encode, err := ensureInput(ctx, path)
	if err != nil {
		return "", inputInfo{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", inputInfo{}, fmt.Errorf("input: %w", err)
	}
	defer f.Close()
	tags, err := readFLVTags(f)
	if err != nil {
		return "", inputInfo{}, fmt.Errorf("input %s: %w", path, err)
	}
	in := inputInfo{Encode: encode}
	if in.File, err = filepath.Rel(root, path); err != nil {
		in.File = path
	}
	if len(tags) > 1 {
		in.Seconds = float64(tags[len(tags)-1].Timestamp-tags[0].Timestamp) / 1000
	}
	for _, t := range tags {
		in.Bytes += int64(len(t.Data))
	}
	in.BitrateKbps = ratio(float64(in.Bytes)*8/1000, in.Seconds)
	return path, in, nil
}
