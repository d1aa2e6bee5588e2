package cluster

import (
	"context"
	"fmt"
	"onair/scripts/bench/oldkit"
	"time"
)

// measure runs one wrk load against A or B and notes both nodes' CPU.
func (c *clusterHLSBench) measure(ctx context.Context, round int, via string) (clusterHLSRun, error) {
	run := clusterHLSRun{Round: round, Via: via, Base: c.a.HTTP}
	if via == viaProxy {
		run.Base = c.b.HTTP
	}
	pa, pb := []int{c.a.Pid()}, []int{c.b.Pid()}
	idleA0, err := oldkit.CpuSeconds(pa)
	if err != nil {
		return run, err
	}
	idleB0, err := oldkit.CpuSeconds(pb)
	if err != nil {
		return run, err
	}
	idleStart := time.Now()
	if err := oldkit.SleepUntil(ctx, idleStart.Add(3*time.Second)); err != nil {
		return run, err
	}
	a0, err := oldkit.CpuSeconds(pa)
	if err != nil {
		return run, err
	}
	b0, err := oldkit.CpuSeconds(pb)
	if err != nil {
		return run, err
	}
	idle := time.Since(idleStart).Seconds()
	run.IdleAPct, run.IdleBPct = 100*(a0-idleA0)/idle, 100*(b0-idleB0)/idle
	client := oldkit.NewHTTPClient()
	defer client.CloseIdleConnections()
	m0, err := c.a.Metrics(ctx, client)
	if err != nil {
		return run, err
	}
	busy0, _ := oldkit.ReadCPUTimes()
	started := time.Now()
	w, err := oldkit.RunWrk(ctx, c.tmp, run.Base, c.cfg.wrk)
	if err != nil {
		return run, fmt.Errorf("round %d via %s: %w", round, via, err)
	}
	wall := time.Since(started).Seconds()
	run.MachineBusy = oldkit.BusySince(busy0)
	a1, err := oldkit.CpuSeconds(pa)
	if err != nil {
		return run, err
	}
	b1, err := oldkit.CpuSeconds(pb)
	if err != nil {
		return run, err
	}
	m1, err := c.a.Metrics(ctx, client)
	if err != nil {
		return run, err
	}
	run.OriginRequests = int64(oldkit.PromSum(m1, "onair_hls_requests_total") - oldkit.PromSum(m0, "onair_hls_requests_total"))
	run.Requests, run.Seconds, run.RPS = w.Requests, w.Seconds, w.RPS
	run.Non2xx, run.SocketErrors = w.Non2xx, w.SocketErrs
	run.LatencyP50, run.LatencyP99, run.Transfer = w.LatencyP50, w.LatencyP99, w.BytesPerSec
	run.CPUA, run.CPUB = a1-a0, b1-b0
	run.CPUAPercent, run.CPUBPercent = 100*run.CPUA/wall, 100*run.CPUB/wall
	if err := c.alive(); err != nil {
		return run, fmt.Errorf("round %d via %s: %w", round, via, err)
	}
	if w.Non2xx > 0 || w.SocketErrs != "" {
		return run, fmt.Errorf("round %d via %s: %d non-2xx answers, socket errors %q", round, via, w.Non2xx, w.SocketErrs)
	}
	return run, nil
}

// alive checks that both nodes and the publisher still run.
func (c *clusterHLSBench) alive() error {
	if err := c.a.Alive(); err != nil {
		return fmt.Errorf("node A: %w", err)
	}
	if err := c.b.Alive(); err != nil {
		return fmt.Errorf("node B: %w", err)
	}
	if exited, err := c.pub.Exited(); exited {
		return fmt.Errorf("the publisher exited (%v): %s", err, c.pub.Output())
	}
	return nil
}
