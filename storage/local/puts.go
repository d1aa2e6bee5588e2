package local

import (
	"fmt"
	"sync"
)

// MaxPendingPuts bounds the presigned PUT URLs handed out and not used yet.
const MaxPendingPuts = 10_000

// pendingPuts holds the PUT URLs onair presigned and nobody has used yet, by signature.
// The handler accepts a PUT only for one of them, once: a signed URL alone is not enough,
// so the endpoint writes nothing onair did not ask for, even if the secret leaked in an
// old URL's logs. Lost on a restart, like an upload session would be.
type pendingPuts struct {
	mu  sync.Mutex
	exp map[string]int64 // signature → expiry, unix seconds
}

// add records sig, pruning expired entries when full.
func (p *pendingPuts) add(sig string, exp, now int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exp == nil {
		p.exp = make(map[string]int64)
	}
	if len(p.exp) >= MaxPendingPuts {
		for s, e := range p.exp {
			if now > e {
				delete(p.exp, s)
			}
		}
	}
	if len(p.exp) >= MaxPendingPuts {
		return fmt.Errorf("%d presigned PUTs are waiting to be used", len(p.exp))
	}
	p.exp[sig] = exp
	return nil
}

// take removes sig and reports whether it was pending.
func (p *pendingPuts) take(sig string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.exp[sig]
	delete(p.exp, sig)
	return ok
}

// restore puts sig back after a PUT that stored nothing, so that the client may retry.
func (p *pendingPuts) restore(sig string, exp int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exp[sig] = exp
}
