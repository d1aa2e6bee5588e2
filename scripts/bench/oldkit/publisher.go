package oldkit

import (
	"context"
	"time"
)

// rtmpTarget is where a publisher sends: rtmp://Addr/App/Name.
type RtmpTarget struct {
	Addr string // host:port
	App  string
	Name string // stream key (onair) or stream name (nginx-rtmp)
}

func (t RtmpTarget) String() string { return "rtmp://" + t.Addr + "/" + t.App + "/<key>" }

// sleepUntil waits until t or until ctx ends (then returning its error).
func SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
