package rooms

import (
	"sync"
	"time"
)

// RateLimit allows Failures failed attempts per sliding Window. A negative Failures
// disables the limit; zero values take the defaults.
type RateLimit struct {
	Failures int
	Window   time.Duration
}

// failureWindow counts failures per key over a sliding window, in memory. It keeps at
// most limit timestamps per key and at most maxKeys keys, so its memory is bounded
// whatever an attacker sends.
type failureWindow struct {
	limit   int
	window  time.Duration
	maxKeys int

	mu   sync.Mutex
	hits map[string][]time.Time // oldest first, at most limit entries
}

func newFailureWindow(l RateLimit, maxKeys int) *failureWindow {
	return &failureWindow{limit: l.Failures, window: l.Window, maxKeys: maxKeys, hits: map[string][]time.Time{}}
}

func (w *failureWindow) disabled() bool { return w.limit < 0 }

// blocked reports how long until key may try again; 0 means now.
func (w *failureWindow) blocked(key string, now time.Time) time.Duration {
	if w.disabled() || key == "" {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	hs := w.live(key, now)
	if len(hs) < w.limit {
		return 0
	}
	// The oldest failure in the window has to leave it before one more attempt is allowed.
	wait := hs[len(hs)-w.limit].Add(w.window).Sub(now)
	if wait < time.Second {
		wait = time.Second
	}
	return wait
}

// fail records a failed attempt.
func (w *failureWindow) fail(key string, now time.Time) {
	if w.disabled() || key == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	hs := w.live(key, now)
	if hs == nil && len(w.hits) >= w.maxKeys {
		w.pruneLocked(now)
		for k := range w.hits { // still full: forget arbitrary keys rather than grow
			if len(w.hits) < w.maxKeys {
				break
			}
			delete(w.hits, k)
		}
	}
	hs = append(hs, now)
	if len(hs) > w.limit {
		hs = append(hs[:0], hs[len(hs)-w.limit:]...)
	}
	w.hits[key] = hs
}

// reset forgets key's failures (after a successful login).
func (w *failureWindow) reset(key string) {
	w.mu.Lock()
	delete(w.hits, key)
	w.mu.Unlock()
}

// live drops key's failures older than the window and returns the rest.
func (w *failureWindow) live(key string, now time.Time) []time.Time {
	hs := w.hits[key]
	i := 0
	for i < len(hs) && now.Sub(hs[i]) >= w.window {
		i++
	}
	if i == len(hs) {
		delete(w.hits, key)
		return nil
	}
	if i > 0 {
		hs = append(hs[:0], hs[i:]...)
		w.hits[key] = hs
	}
	return hs
}

func (w *failureWindow) prune(now time.Time) {
	w.mu.Lock()
	w.pruneLocked(now)
	w.mu.Unlock()
}

func (w *failureWindow) pruneLocked(now time.Time) {
	for k := range w.hits {
		w.live(k, now)
	}
}
