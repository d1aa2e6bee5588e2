package oldkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// describeMachine says what the numbers were measured on.
func DescribeMachine(ctx context.Context) MachineInfo {
	m := MachineInfo{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: LoadAvg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	m.FFmpeg, _, _ = strings.Cut(FirstLine(ctx, "ffmpeg", "-hide_banner", "-version"), " Copyright")
	m.Nginx = FirstLine(ctx, "nginx", "-v")
	return m
}

// firstLine is the first line a command prints (stdout or stderr), or "".
func FirstLine(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, name, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// loadAvg is the 1, 5 and 15 minute load average.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// cpuTimes is the machine's busy and total CPU time so far, from /proc/stat, in ticks.
type CpuTimes struct{ busy, total uint64 }

func ReadCPUTimes() (CpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CpuTimes{}, fmt.Errorf("machine: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return CpuTimes{}, errors.New("machine: /proc/stat has no cpu line")
	}
	var t CpuTimes
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return CpuTimes{}, fmt.Errorf("machine: /proc/stat: %w", err)
		}
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	return t, nil
}

// busySince is how busy the machine has been since t0, in % of all its cores.
func BusySince(t0 CpuTimes) float64 {
	t1, err := ReadCPUTimes()
	if err != nil || t1.total <= t0.total {
		return 0
	}
	return 100 * float64(t1.busy-t0.busy) / float64(t1.total-t0.total)
}
