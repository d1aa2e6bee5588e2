package oldkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 on Linux
// whatever the kernel's own tick rate.
const userHZ = 100

// procStat is what /proc says about one process at one moment.
type procStat struct {
	PPID     int
	CPUTicks uint64 // utime + stime, in 1/userHZ s
	RSSBytes uint64
}

// readProcStat reads /proc/<pid>/stat and /proc/<pid>/status.
func ReadProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("procstat: %w", err)
	}
	st, err := parseStat(b)
	if err != nil {
		return procStat{}, fmt.Errorf("procstat: pid %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("procstat: %w", err)
	}
	if st.RSSBytes, err = parseRSS(status); err != nil {
		return procStat{}, fmt.Errorf("procstat: pid %d: %w", pid, err)
	}
	return st, nil
}

// parseStat reads the parent pid, utime and stime from /proc/<pid>/stat. The command
// name (field 2) may hold spaces and parentheses, so fields are counted from its end.
func parseStat(b []byte) (procStat, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return procStat{}, errors.New("stat: no command name")
	}
	f := strings.Fields(string(b[end+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("stat: %d fields after the command name", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("stat: ppid: %w", err)
	}
	utime, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat: utime: %w", err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat: stime: %w", err)
	}
	return procStat{PPID: ppid, CPUTicks: utime + stime}, nil
}

// parseRSS reads VmRSS from /proc/<pid>/status.
func parseRSS(status []byte) (uint64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: VmRSS %q", rest)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status: VmRSS: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("status: no VmRSS")
}

// processTree returns pid and its children (nginx: the master and its workers).
func ProcessTree(pid int) []int {
	pids := []int{pid}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		child, err := strconv.Atoi(filepath.Base(d))
		if err != nil || child == pid {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		if st, err := parseStat(b); err == nil && st.PPID == pid {
			pids = append(pids, child)
		}
	}
	return pids
}

// groupStat sums CPU time and RSS over pids.
func GroupStat(pids []int) (cpuTicks, rss uint64, err error) {
	for _, pid := range pids {
		st, err := ReadProcStat(pid)
		if err != nil {
			return 0, 0, err
		}
		cpuTicks += st.CPUTicks
		rss += st.RSSBytes
	}
	return cpuTicks, rss, nil
}

// usage is what a group of processes used over a window.
type Usage struct {
	Wall       time.Duration
	CPUSeconds float64
	// CPUPercent is of one core: 100 is one core busy all the time.
	CPUPercent float64
	RSSMean    uint64
	RSSMax     uint64
	RSSFirst   uint64
	RSSLast    uint64
}

// measureUsage samples pids every interval for window and returns their CPU use over
// the window and their summed RSS (mean, max, first and last sample).
func MeasureUsage(ctx context.Context, pids []int, window, interval time.Duration) (Usage, error) {
	start := time.Now()
	cpu0, rss, err := GroupStat(pids)
	if err != nil {
		return Usage{}, err
	}
	u := Usage{RSSFirst: rss, RSSMax: rss}
	sum, n := rss, uint64(1)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.NewTimer(window)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return Usage{}, ctx.Err()
		case <-tick.C:
			_, rss, err := GroupStat(pids)
			if err != nil {
				return Usage{}, err
			}
			sum += rss
			n++
			u.RSSMax = max(u.RSSMax, rss)
		case <-deadline.C:
			cpu1, rss, err := GroupStat(pids)
			if err != nil {
				return Usage{}, err
			}
			u.Wall = time.Since(start)
			u.CPUSeconds = float64(cpu1-cpu0) / userHZ
			u.CPUPercent = 100 * u.CPUSeconds / u.Wall.Seconds()
			sum += rss
			n++
			u.RSSMax = max(u.RSSMax, rss)
			u.RSSLast = rss
			u.RSSMean = sum / n
			return u, nil
		}
	}
}

// cpuSeconds is the CPU time pids have used so far.
func CpuSeconds(pids []int) (float64, error) {
	ticks, _, err := GroupStat(pids)
	return float64(ticks) / userHZ, err
}

// dirSize is the size of the regular files under dir.
func DirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // removed while walking (old segments)
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return n, nil
}
