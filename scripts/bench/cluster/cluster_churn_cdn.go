package cluster

import (
	"context"
	"fmt"
	"net/http"
	"onair/configs/cdn"
	"onair/scripts/bench/benchkit"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cdn runs one node behind nginx with the CDN example and counts the origin's HLS
// requests under more and more players.
func (c *churnRun) cdn(ctx context.Context) error {
	n, err := c.stack.Node(ctx, c.Run, "cdn")
	if err != nil {
		return err
	}
	defer n.Stop()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return fmt.Errorf("nginx is required (scripts/deps.sh bench installs it): %w", err)
	}
	listen, dir := "127.0.0.1:"+strconv.Itoa(benchkit.FreePort()), filepath.Join(c.Tmp, "cdn")
	conf, err := cdn.Write(dir, listen, strings.TrimPrefix(n.HTTP, "http://"))
	if err != nil {
		return err
	}
	nginx, err := benchkit.StartProcess("nginx", exec.Command(bin, "-p", dir, "-c", conf, "-e", "stderr"))
	if err != nil {
		return err
	}
	defer nginx.Stop(syscall.SIGTERM, 10*time.Second)
	if err := benchkit.WaitReady(ctx, nginx, 10*time.Second, func() error { _, err := benchkit.HTTPStatus(ctx, http.DefaultClient, "http://"+listen+"/"); return err }); err != nil {
		return err
	}
	api := c.api.At(n.HTTP)
	if err := api.SetRecording(ctx, churnCDNRoom, false); err != nil {
		return err
	}
	pub, err := api.PublishLive(ctx, c.stack.Input, n, churnCDNRoom, c.keys[churnCDNRoom])
	if err != nil {
		return err
	}
	defer pub.Stop(syscall.SIGTERM, 3*time.Second)
	url := "http://" + listen + "/live/" + churnCDNRoom + "/index.m3u8"
	for _, count := range c.cfg.cdnPlayers {
		run, err := c.cdnLoad(ctx, n, url, count)
		if err != nil {
			return fmt.Errorf("%d players: %w", count, err)
		}
		c.Logf("CDN, %d players: %.1f origin requests/s, %.2f parts per player per s", count, run.RPS(), run.PartsPerPlayerS)
		c.res.CDN = append(c.res.CDN, run)
		if err := pub.Alive(); err != nil {
			return err
		}
	}
	return nil
}

// cdnLoad plays with count players through nginx and counts what reaches the origin n
// over the window after the warm-up.
func (c *churnRun) cdnLoad(ctx context.Context, n *benchkit.Node, url string, count int) (churnCDNRun, error) {
	run := churnCDNRun{Players: count}
	playCtx, stop := context.WithCancel(ctx)
	players, wait := benchkit.StartViewers(playCtx, count, func(int) (int, int, string) { return 0, 0, url })
	defer func() { stop(); wait() }()
	if err := benchkit.SleepUntil(ctx, time.Now().Add(c.cfg.cdnWarmup)); err != nil {
		return run, err
	}
	client := benchkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	m0, err := n.Metrics(ctx)
	if err != nil {
		return run, err
	}
	m, t0 := benchkit.StartMeter(), time.Now()
	if err := benchkit.SleepUntil(ctx, t0.Add(c.cfg.cdnWindow)); err != nil {
		return run, err
	}
	m1, err := n.Metrics(ctx)
	if err != nil {
		return run, err
	}
	run.Seconds, run.MachineBusy = m.Wall(), m.Busy()
	run.ByKind = benchkit.PromByLabel(m1, "onair_hls_requests_total")
	for k, v := range benchkit.PromByLabel(m0, "onair_hls_requests_total") {
		run.ByKind[k] -= v
	}
	for _, v := range run.ByKind {
		run.Requests += v
	}
	parts := 0
	for _, p := range players {
		for _, a := range p.Arrivals(t0) {
			if a >= 0 && a < run.Seconds {
				parts++
			}
		}
		run.Rejoins += int(p.Rejoins.Load())
	}
	run.PartsPerPlayerS = benchkit.Ratio(float64(parts), float64(count)*run.Seconds)
	return run, nil
}
