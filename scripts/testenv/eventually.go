package testenv

import (
	"testing"
	"time"
)

// Eventually waits until cond holds and returns how long that took, failing the test with
// cond's last explanation once timeout has passed. It polls soon after the start and then
// less often (every 100 ms at most), so that quick conditions are seen quickly and slow
// ones do not keep the servers busy; cond is checked once more after the deadline.
//
// Wait on what the test is about (a state, a counter, a log entry) rather than sleeping:
// a sleep that then asserts that nothing happened passes whether or not the code works.
func Eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	wait := 10 * time.Millisecond
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("condition not met within %s: %s", timeout, why)
		}
		time.Sleep(wait)
		wait = min(2*wait, 100*time.Millisecond)
	}
}
