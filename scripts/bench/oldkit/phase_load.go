package oldkit

import (
	"sync"
	"syscall"
	"time"
)

const Mb = 1 << 20

// tail is the end of s, at most n bytes.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// stopAll stops processes in parallel.
func StopAll(ps []*Process) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Stop(syscall.SIGTERM, 3*time.Second)
		}()
	}
	wg.Wait()
}
