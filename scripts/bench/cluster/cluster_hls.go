package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"onair/scripts/bench/live"
	"onair/scripts/bench/oldkit"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clusterHLSRoom is the room the benchmark publishes to node A.
const clusterHLSRoom = "hls"

// clusterHLSBench is one run of `bench cluster-hls`.
type clusterHLSBench struct {
	cfg  clusterHLSConfig
	tmp  string
	a, b *oldkit.RigNode
	pub  *oldkit.Process
	res  *clusterHLSResults
	oldkit.RunLog
	cleanups []func()
}

// runClusterHLS is `bench cluster-hls`: two onair nodes on one FerretDB and MinIO, a
// stream published to A, and the same wrk viewer load against A directly and through B.
func RunClusterHLS(ctx context.Context, args []string, root, command string, stdout, stderr io.Writer) error {
	cfg, err := parseClusterHLSFlags(args, root, stderr)
	if err != nil {
		return err
	}
	c := &clusterHLSBench{cfg: cfg, RunLog: oldkit.RunLog{Name: "cluster-hls", Out: stderr},
		res: &clusterHLSResults{Command: command, Started: time.Now().UTC().Format(time.RFC3339), Machine: oldkit.DescribeMachine(ctx), Recording: cfg.recording}}
	if c.tmp, err = os.MkdirTemp("", "onair-bench-cluster-hls-"); err != nil {
		return fmt.Errorf("bench cluster-hls: %w", err)
	}
	defer os.RemoveAll(c.tmp)
	defer c.cleanup()
	if err := c.setup(ctx, root); err != nil {
		return fmt.Errorf("bench cluster-hls: %w", err)
	}
	for round := 1; round <= cfg.rounds && ctx.Err() == nil; round++ {
		for _, via := range []string{viaOrigin, viaProxy} {
			run, err := c.measure(ctx, round, via)
			if err != nil {
				c.res.Errors = append(c.res.Errors, err.Error())
				c.Logf("error: %v", err)
				continue
			}
			c.Logf("round %d via %s: %.0f requests/s; CPU A %.0f %%, B %.0f %% of a core", round, via, run.RPS, run.CPUAPercent, run.CPUBPercent)
			c.res.Runs = append(c.res.Runs, run)
		}
	}
	if err := ctx.Err(); err != nil {
		c.res.Errors = append(c.res.Errors, fmt.Sprintf("bench cluster-hls: stopped: %v", err))
	}
	c.cleanup()
	c.res.Machine.LoadEnd = oldkit.LoadAvg()
	c.res.Finished = time.Now().UTC().Format(time.RFC3339)
	section := clusterHLSSection(c.res)
	fmt.Fprintln(stdout, section)
	return oldkit.RigWrite(cfg.RigFlags, c.res, len(c.res.Errors), section, c.Logf)
}

// cleanup stops what setup started, the last first.
func (c *clusterHLSBench) cleanup() {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
	c.cleanups = nil
}

// setup starts FerretDB, MinIO and the two nodes, creates the room, publishes to A and
// finds the paths the viewers ask for.
func (c *clusterHLSBench) setup(ctx context.Context, root string) error {
	input, in, err := oldkit.RigInput(ctx, root, c.cfg.OutDir)
	if err != nil {
		return err
	}
	c.res.Input = in
	binary := filepath.Join(c.tmp, "onair")
	if c.res.Onair, err = oldkit.CopyBinary(c.cfg.Onair, binary); err != nil {
		return err
	}
	c.res.Onair.Path, _ = filepath.Rel(root, c.cfg.Onair)
	ferret, err := oldkit.RigTool(root, "ferretdb")
	if err != nil {
		return err
	}
	minio, err := oldkit.RigTool(root, "minio")
	if err != nil {
		return err
	}
	mongo, err := oldkit.StartRigMongo(ctx, ferret, filepath.Join(c.tmp, "mongo"))
	if err != nil {
		return err
	}
	c.cleanups = append(c.cleanups, mongo.Stop)
	s3, err := oldkit.StartRigS3(ctx, minio, filepath.Join(c.tmp, "s3"))
	if err != nil {
		return err
	}
	c.cleanups = append(c.cleanups, s3.Stop)
	for _, name := range []string{"a", "b"} {
		port, err := oldkit.FreePort()
		if err != nil {
			return err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		n, err := oldkit.StartRigNode(ctx, oldkit.RigNodeOptions{Binary: binary, DataDir: filepath.Join(c.tmp, "onair-"+name),
			Mongo: mongo.URI, HttpAddr: addr, Env: append(s3.Env(), "ONAIR_NODE_ADVERTISE_URL=http://"+addr)})
		if err != nil {
			return fmt.Errorf("node %s: %w", strings.ToUpper(name), err)
		}
		c.cleanups = append(c.cleanups, n.Stop)
		if name == "a" {
			c.a = n
		} else {
			c.b = n
		}
	}
	c.Logf("node A %s, node B %s", c.a.HTTP, c.b.HTTP)

	api, err := oldkit.NewRigAPI(c.a.HTTP)
	if err == nil {
		err = api.SignUp(ctx, "bench")
	}
	var key string
	if err == nil {
		key, err = api.CreateRoom(ctx, clusterHLSRoom)
	}
	if err == nil && !c.cfg.recording {
		err = api.SetRecording(ctx, clusterHLSRoom, false)
	}
	if err != nil {
		return err
	}
	if c.pub, err = oldkit.StartFFmpegPublisher(input, c.a.PublishURL(key)); err != nil {
		return err
	}
	c.cleanups = append(c.cleanups, func() { c.pub.Stop(syscall.SIGTERM, 3*time.Second) })
	if err := api.WaitLive(ctx, clusterHLSRoom, 20*time.Second); err != nil {
		return err
	}
	if err := oldkit.SleepUntil(ctx, time.Now().Add(c.cfg.warmup)); err != nil {
		return err
	}
	return c.findPaths(ctx)
}

// findPaths takes the media playlist and newest complete segment from A (as the live
// benchmark does) and checks that B serves the same.
func (c *clusterHLSBench) findPaths(ctx context.Context) error {
	client := oldkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	paths, err := live.OnairLoadPaths(ctx, client, c.a.HTTP, clusterHLSRoom)
	if err != nil {
		return err
	}
	segA, _, err := oldkit.HttpGet(ctx, client, c.a.HTTP+paths[1])
	if err != nil {
		return err
	}
	segB, _, err := oldkit.HttpGet(ctx, client, c.b.HTTP+paths[1])
	if err != nil {
		return fmt.Errorf("through node B: %w", err)
	}
	if !bytes.Equal(segA, segB) {
		return fmt.Errorf("node B served %d bytes for %s, node A %d", len(segB), paths[1], len(segA))
	}
	if _, _, err := oldkit.HttpGet(ctx, client, c.b.HTTP+paths[0]); err != nil {
		return fmt.Errorf("through node B: %w", err)
	}
	c.res.Paths, c.res.SegmentBytes = paths, len(segA)
	c.cfg.wrk.Paths = paths
	c.res.WrkCommand = "wrk " + strings.Join(oldkit.WrkArgs(c.cfg.wrk, "paths.lua", "http://<node>"), " ")
	return nil
}
