package web

import (
	"context"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// webRoom is the room whose page the benchmark loads.
const webRoom = "web-bench"

// runWeb is `bench web`: onair with FerretDB, one live room, and the room page loaded by
// web/ui/e2e/bench.mjs in headless Chromium for its weight and time to the first frame.
func RunWeb(ctx context.Context, args []string, root, command string, stdout, stderr io.Writer) error {
	cfg, err := parseWebFlags(args, root, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s bench web: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	res := &webResults{Command: command, Started: time.Now().UTC().Format(time.RFC3339), Machine: oldkit.DescribeMachine(ctx)}
	tmp, err := os.MkdirTemp("", "onair-bench-web-")
	if err != nil {
		return fmt.Errorf("bench web: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := measureWeb(ctx, cfg, root, tmp, res, logf); err != nil {
		logf("error: %v", err)
		res.Errors = append(res.Errors, err.Error())
	}
	res.Machine.LoadEnd = oldkit.LoadAvg()
	res.Finished = time.Now().UTC().Format(time.RFC3339)
	section := webSection(res)
	fmt.Fprintln(stdout, section)
	return oldkit.RigWrite(cfg.RigFlags, res, len(res.Errors), section, logf)
}

// measureWeb starts the servers and a publisher, waits until the room is live and runs
// bench.mjs against its page.
func measureWeb(ctx context.Context, cfg webConfig, root, tmp string, res *webResults, logf func(string, ...any)) error {
	e2eDir := filepath.Join(root, "web", "ui", "e2e")
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "playwright-core")); err != nil {
		return fmt.Errorf("playwright-core is not installed: run make e2e-deps: %w", err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	res.Chromium = chromiumVersion(ctx, chromium)
	input, in, err := oldkit.RigInput(ctx, root, cfg.OutDir)
	if err != nil {
		return err
	}
	res.Input = in
	binary := filepath.Join(tmp, "onair")
	if res.Onair, err = oldkit.CopyBinary(cfg.Onair, binary); err != nil {
		return err
	}
	res.Onair.Path, _ = filepath.Rel(root, cfg.Onair)
	ferret, err := oldkit.RigTool(root, "ferretdb")
	if err != nil {
		return err
	}
	mongo, err := oldkit.StartRigMongo(ctx, ferret, filepath.Join(tmp, "mongo"))
	if err != nil {
		return err
	}
	defer mongo.Stop()
	node, err := oldkit.StartRigNode(ctx, oldkit.RigNodeOptions{Binary: binary, DataDir: filepath.Join(tmp, "onair"+"-data"), Mongo: mongo.URI})
	if err != nil {
		return err
	}
	defer node.Stop()
	api, err := oldkit.NewRigAPI(node.HTTP)
	if err == nil {
		err = api.SignUp(ctx, "bench")
	}
	var key string
	if err == nil {
		key, err = api.CreateRoom(ctx, webRoom)
	}
	if err != nil {
		return err
	}
	pub, err := oldkit.StartFFmpegPublisher(input, node.PublishURL(key))
	if err != nil {
		return err
	}
	defer pub.Stop(syscall.SIGTERM, 3*time.Second)
	if err := api.WaitLive(ctx, webRoom, 20*time.Second); err != nil {
		return err
	}
	if err := oldkit.SleepUntil(ctx, time.Now().Add(cfg.warmup)); err != nil {
		return err
	}
	url := node.HTTP + "/rooms/" + webRoom
	logf("room page %s: %d runs of bench.mjs", url, cfg.runs)
	out, err := runPageBench(ctx, cfg, e2eDir, chromium, url)
	res.PageCommand = fmt.Sprintf("node web/ui/e2e/bench.mjs --url http://127.0.0.1:<port>/rooms/%s --runs %d", webRoom, cfg.runs)
	if err != nil {
		return err
	}
	if res.Page, err = parseWebPage(out, cfg.runs); err != nil {
		return err
	}
	logf("  first frame median %.0f ms (%s), page %d bytes", res.Page.FirstFrameMS.Median, oldkit.RigJoin(res.Page.FirstFrameMS.All, 0), res.Page.PageBytes)
	if exited, err := pub.Exited(); exited {
		return fmt.Errorf("the publisher exited during the page loads (%v): %s", err, pub.Output())
	}
	return node.Alive()
}

// runPageBench runs bench.mjs in a process group of its own (the browser with it) and
// returns what it printed.
func runPageBench(ctx context.Context, cfg webConfig, e2eDir, chromium, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(cfg.runs)*30*time.Second+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cfg.node, filepath.Join(e2eDir, "bench.mjs"), "--url", url, "--runs", strconv.Itoa(cfg.runs))
	cmd.Dir = e2eDir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	cmd.SysProcAttr = oldkit.ChildAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stderr oldkit.TailBuffer
	stderr.Max = 16 << 10
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// Whatever it left behind (a browser whose parent died) goes with the group.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err != nil {
		return nil, fmt.Errorf("bench.mjs: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// chromiumVersion is what chromium --version prints on stdout (Debian's launcher script
// may complain on stderr).
func chromiumVersion(ctx context.Context, chromium string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, "--version").Output()
	if err != nil {
		return chromium + " (version unknown: " + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}
