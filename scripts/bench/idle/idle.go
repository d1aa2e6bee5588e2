// Package idle is `bench idle`: onair and FerretDB started as `make run` starts them
// (scripts/run.sh), with nobody connected, and their CPU over a window.
package idle

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"onair/scripts/bench/benchkit"
)

// targetPct is the most of a core onair and its embedded database may use together with
// nobody connected.
const targetPct = 1.0

type results struct {
	benchkit.Head
	SettleS float64 `json:"settle_s"`
	Procs   []proc  `json:"procs"`
	Busy    float64 `json:"machine_busy_pct"`
}

type proc struct {
	Name string `json:"name"`
	benchkit.Usage
}

// Run is `bench idle`.
func Run(ctx context.Context, env benchkit.Env, args []string) error {
	r := benchkit.NewRun(env)
	// Measure for a minute, 10 s after onair is ready (its start-up work done).
	const settle, window = 10 * time.Second, time.Minute
	res := &results{SettleS: settle.Seconds()}
	return r.Main(ctx, args, &res.Head, res, func() error { return measure(ctx, r, res, settle, window) }, func() string { return section(res) })
}

func measure(ctx context.Context, r *benchkit.Run, res *results, settle, window time.Duration) error {
	ferret, err := benchkit.StartFerretDB(ctx, r.Root, filepath.Join(r.Tmp, "ferretdb"), "--log-level=error") // scripts/run.sh's flags
	if err != nil {
		return err
	}
	defer ferret.Stop()
	node, err := benchkit.StartNode(ctx, benchkit.NodeOptions{Binary: r.Bin, Args: []string{"-config", filepath.Join(r.Root, "configs", "onair.yaml"), "-demo"},
		Env: []string{"ONAIR_DATA_DIR=" + filepath.Join(r.Tmp, "data"), "ONAIR_MONGO_URI=" + ferret.URI}, ReadyPath: "/readyz"})
	if err != nil {
		return err
	}
	defer node.Stop()
	r.Logf("onair and FerretDB started; measuring after %s, for %s", settle, window)
	if err := benchkit.SleepUntil(ctx, time.Now().Add(settle)); err != nil {
		return err
	}
	procs := []proc{{Name: "onair"}, {Name: "FerretDB"}}
	pids := []int{node.Pid(), ferret.Proc.Pid()}
	errs := make([]error, len(pids))
	m := benchkit.StartMeter()
	var wg sync.WaitGroup
	for i := range pids {
		wg.Go(func() { procs[i].Usage, errs[i] = benchkit.MeasureUsage(ctx, pids[i:i+1], window, time.Second) })
	}
	wg.Wait()
	res.Busy = m.Busy()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	res.Procs = procs
	return node.Alive()
}

func section(r *results) string {
	b := r.Section("Idle: onair and its embedded database with nobody connected")
	fmt.Fprintf(b, "FerretDB and onair as `make run` starts them (`scripts/run.sh`: FerretDB's flags, "+
		"`onair -config configs/onair.yaml -demo`), on free loopback ports: no publisher, no viewer, no chat socket. "+
		"After %.0f s for their start-up work, the CPU time of each (utime + stime from `/proc/<pid>/stat`) over the window.\n\n", r.SettleS)
	if len(r.Procs) == 0 {
		return b.String()
	}
	var rows [][]string
	total := 0.0
	for _, p := range r.Procs {
		total += p.CPUPercent
		rows = append(rows, []string{p.Name, benchkit.F(p.CPUPercent, 2), benchkit.F(p.CPUSeconds, 2), benchkit.F(float64(p.RSSMean)/benchkit.MB, 1)})
	}
	rows = append(rows, []string{"**both**", benchkit.F(total, 2), "", ""})
	fmt.Fprintf(b, "Target: onair and FerretDB together at most %.0f %% of a core: **%s** (%.2f %% over %.0f s; machine busy %.0f %%).\n\n",
		targetPct, map[bool]string{true: "met", false: "not met"}[total <= targetPct], total, r.Procs[0].Wall.Seconds(), r.Busy)
	b.WriteString(benchkit.Table([]string{"process", "CPU, % of a core", "CPU s", "RSS mean (MB)"}, rows...))
	return b.String()
}
