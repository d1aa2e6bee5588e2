package oldkit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// onairBanner is what onair prints at start: where to publish and where to watch.
type onairBanner struct {
	RTMP    string // rtmp://host:port/app
	HTTP    string // http://host:port
	Metrics string // http://host:port of the metrics listener, "" with metrics off
}

// launchOnair starts binary with this process's environment, HTTP, RTMP and metrics on
// free loopback ports, and env (later entries win), and waits for its banner. Every
// publisher of a run dials from 127.0.0.1, so the per-address connection limit, meant for
// the internet, is lifted to the global one.
func LaunchOnair(ctx context.Context, name, binary string, env ...string) (*Process, onairBanner, error) {
	return LaunchOnairCmd(ctx, name, exec.Command(binary), env...)
}

// launchOnairCmd is launchOnair for a command with arguments of its own.
func LaunchOnairCmd(ctx context.Context, name string, cmd *exec.Cmd, env ...string) (*Process, onairBanner, error) {
	cmd.Env = append(append(os.Environ(), "ONAIR_HTTP_ADDR=127.0.0.1:0", "ONAIR_RTMP_ADDR=127.0.0.1:0",
		"ONAIR_METRICS_ADDR=127.0.0.1:0", "ONAIR_RTMP_MAX_CONNECTIONS_PER_ADDRESS=1000"), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, onairBanner{}, fmt.Errorf("%s: %w", name, err)
	}
	proc, err := StartProcess(name, cmd)
	if err != nil {
		return nil, onairBanner{}, err
	}
	banner := make(chan onairBanner, 1)
	go readBanner(stdout, banner)
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case b := <-banner:
		return proc, b, nil
	case <-proc.Done():
		return nil, onairBanner{}, fmt.Errorf("%s exited at start: %s", name, proc.Output())
	case <-timer.C:
		proc.Stop(syscall.SIGTERM, 10*time.Second)
		return nil, onairBanner{}, fmt.Errorf("%s printed no banner within 20 s: %s", name, proc.Output())
	case <-ctx.Done():
		proc.Stop(syscall.SIGTERM, 10*time.Second)
		return nil, onairBanner{}, fmt.Errorf("%s: %w", name, ctx.Err())
	}
}

// readBanner finds the RTMP URL, the HTTP origin and the metrics listener in what onair
// prints at start (cmd/onair/main.go: printBanner), then drains stdout.
func readBanner(r io.Reader, out chan<- onairBanner) {
	re := regexp.MustCompile(`(?m)^OBS server: (\S+)\n(?:OBS server over TLS: \S+\n)?(?:stream key: \S+\n)?` +
		`watch: (https?://[^/\s]+)\S*\n(?:plain http: .*\n)?metrics: (\S+)\n`)
	var seen strings.Builder
	sent := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if sent {
			continue
		}
		seen.WriteString(sc.Text() + "\n")
		if m := re.FindStringSubmatch(seen.String()); m != nil {
			b := onairBanner{RTMP: m[1], HTTP: m[2]}
			if m[3] != "off" {
				b.Metrics = strings.TrimSuffix(m[3], "/metrics")
			}
			out <- b
			sent = true
		}
	}
}
