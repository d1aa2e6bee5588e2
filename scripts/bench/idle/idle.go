package idle

import (
	"context"
	"flag"
	"fmt"
	"io"
	"onair/scripts/bench/benchkit"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// idleTargetPct is the most of a core onair and its embedded database may use together
// with nobody connected.
const idleTargetPct = 1.0

// idleResults is what `bench idle` measured.
type idleResults struct {
	Command  string               `json:"command"`
	Started  string               `json:"started"`
	Finished string               `json:"finished"`
	Machine  benchkit.MachineInfo `json:"machine"`
	Onair    benchkit.BinaryInfo  `json:"onair"`
	SettleS  float64              `json:"settle_s"`
	Procs    []idleProc           `json:"procs"`
	Busy     float64              `json:"machine_busy_pct"`
	Errors   []string             `json:"errors,omitempty"`
}

type idleProc struct {
	Name string `json:"name"`
	benchkit.Usage
}

// runIdle is `bench idle`: onair and FerretDB started as `make run` starts them
// (scripts/run.sh), with nobody connected, and their CPU over a window.
func RunIdle(ctx context.Context, args []string, root, command string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := benchkit.RigFlags{Name: "idle"}
	out.Register(fs, root)
	settle := fs.Duration("settle", 10*time.Second, "wait this long after onair is ready before measuring (its start-up work)")
	window := fs.Duration("window", time.Minute, "measure CPU this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := out.Check(fs); err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s bench idle: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	res := &idleResults{Command: command, Started: time.Now().UTC().Format(time.RFC3339), Machine: benchkit.DescribeMachine(ctx), SettleS: settle.Seconds()}
	tmp, err := os.MkdirTemp("", "onair-bench-idle-")
	if err != nil {
		return fmt.Errorf("bench idle: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "onair")
	if res.Onair, err = benchkit.CopyBinary(out.Onair, bin); err != nil {
		return fmt.Errorf("bench idle: %w", err)
	}
	res.Onair.Path, _ = filepath.Rel(root, out.Onair)
	if res.Procs, res.Busy, err = measureIdle(ctx, root, tmp, bin, *settle, *window, logf); err != nil {
		logf("error: %v", err)
		res.Errors = append(res.Errors, err.Error())
	}
	res.Machine.LoadEnd = benchkit.LoadAvg()
	res.Finished = time.Now().UTC().Format(time.RFC3339)
	section := idleSection(res)
	fmt.Fprintln(stdout, section)
	return benchkit.RigWrite(out, res, len(res.Errors), section, logf)
}

func measureIdle(ctx context.Context, root, tmp, bin string, settle, window time.Duration, logf func(string, ...any)) ([]idleProc, float64, error) {
	ferretBin, err := benchkit.RigTool(root, "ferretdb")
	if err != nil {
		return nil, 0, err
	}
	ferret, err := benchkit.StartFerretDB(ctx, ferretBin, filepath.Join(tmp, "ferretdb"), "--log-level=error") // scripts/run.sh's flags
	if err != nil {
		return nil, 0, err
	}
	defer ferret.Stop()
	cmd := exec.Command(bin, "-config", filepath.Join(root, "configs", "onair.yaml"), "-demo")
	proc, banner, err := benchkit.LaunchOnairCmd(ctx, "onair", cmd, "ONAIR_DATA_DIR="+filepath.Join(tmp, "data"), "ONAIR_MONGO_URI="+ferret.URI)
	if err != nil {
		return nil, 0, err
	}
	o := &benchkit.ChatOnair{Proc: proc}
	defer o.Stop()
	if err := benchkit.WaitHTTP200(ctx, proc, banner.HTTP+"/readyz", 30*time.Second); err != nil {
		return nil, 0, err
	}
	logf("onair and FerretDB started; measuring after %s, for %s", settle, window)
	if err := benchkit.SleepUntil(ctx, time.Now().Add(settle)); err != nil {
		return nil, 0, err
	}
	procs := []idleProc{{Name: "onair"}, {Name: benchkit.NameFerret}}
	pids := []int{proc.Pid(), ferret.Proc.Pid()}
	errs := make([]error, len(procs))
	t0, err := benchkit.ReadCPUTimes()
	if err != nil {
		return nil, 0, err
	}
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() { procs[i].Usage, errs[i] = benchkit.MeasureUsage(ctx, pids[i:i+1], window, time.Second) })
	}
	wg.Wait()
	busy := benchkit.BusySince(t0)
	for _, err := range errs {
		if err != nil {
			return nil, 0, err
		}
	}
	return procs, busy, o.Alive()
}

// idleSection renders the bench:idle section of BENCHMARKS.md.
func idleSection(r *idleResults) string {
	var b strings.Builder
	benchkit.RigSectionHead(&b, "Idle: onair and its embedded database with nobody connected", r.Command, r.Started, r.Finished, r.Machine, r.Onair)
	fmt.Fprintf(&b, "FerretDB and onair as `make run` starts them (`scripts/run.sh`: FerretDB's flags, "+
		"`onair -config configs/onair.yaml -demo`), on free loopback ports: no publisher, no viewer, no chat socket. "+
		"After %.0f s for their start-up work, the CPU time of each (utime + stime from `/proc/<pid>/stat`) over the window.\n\n", r.SettleS)
	benchkit.RunErrors(&b, r.Errors)
	var rows [][]string
	total := 0.0
	for _, p := range r.Procs {
		total += p.CPUPercent
		rows = append(rows, []string{p.Name, benchkit.Fnum(p.CPUPercent, 2), benchkit.Fnum(p.CPUSeconds, 2), benchkit.Fnum(float64(p.RSSMean)/benchkit.Mb, 1)})
	}
	if len(r.Procs) > 0 {
		verdict := "met"
		if total > idleTargetPct {
			verdict = "not met"
		}
		rows = append(rows, []string{"**both**", benchkit.Fnum(total, 2), "", ""})
		fmt.Fprintf(&b, "Target: onair and FerretDB together at most %.0f %% of a core: **%s** (%.2f %% over %.0f s; "+
			"machine busy %.0f %%).\n\n", idleTargetPct, verdict, total, r.Procs[0].Wall.Seconds(), r.Busy)
	}
	b.WriteString(benchkit.Table([]string{"process", "CPU, % of a core", "CPU s", "RSS mean (MB)"}, rows))
	return b.String()
}
