package record

import (
	"context"
	"fmt"
	"sync"
)

// ledgerDB is the state the nodes of a test share: a Ledger as rooms keeps it in MongoDB,
// reduced to what the recorder relies on. rooms tests its own on FerretDB.
type ledgerDB struct {
	mu      sync.Mutex
	owners  map[string]string // key -> node
	entries map[string]*ledgerEntry
	dead    map[string]bool // nodes dead for longer than the grace period
}

type ledgerEntry struct {
	rec    Recording
	chunks []StoredChunk
}

func newLedgerDB() *ledgerDB {
	return &ledgerDB{owners: map[string]string{}, entries: map[string]*ledgerEntry{}, dead: map[string]bool{}}
}

// node is the Ledger of one node.
func (db *ledgerDB) node(id string) Ledger { return &memLedger{db: db, node: id} }

func (db *ledgerDB) setDead(node string, dead bool) {
	db.mu.Lock()
	db.dead[node] = dead
	db.mu.Unlock()
}

// chunks returns the chunks the ledger holds of key.
func (db *ledgerDB) chunks(key string) []StoredChunk {
	db.mu.Lock()
	defer db.mu.Unlock()
	if e := db.entries[key]; e != nil {
		return append([]StoredChunk(nil), e.chunks...)
	}
	return nil
}

func (db *ledgerDB) empty() bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	return len(db.owners) == 0 && len(db.entries) == 0
}

type memLedger struct {
	db   *ledgerDB
	node string
}

func (l *memLedger) Begin(_ context.Context, rec Recording) error {
	l.db.mu.Lock()
	defer l.db.mu.Unlock()
	if o, ok := l.db.owners[rec.Key]; ok && o != l.node {
		return fmt.Errorf("%s: held by %s", rec.Key, o)
	}
	l.db.owners[rec.Key] = l.node
	if l.db.entries[rec.Key] == nil {
		l.db.entries[rec.Key] = &ledgerEntry{rec: rec}
	}
	return nil
}

func (l *memLedger) Stored(_ context.Context, key string, c StoredChunk) error {
	l.db.mu.Lock()
	defer l.db.mu.Unlock()
	e := l.db.entries[key]
	switch {
	case c.N <= len(e.chunks):
		return nil // noted again
	case c.N != len(e.chunks)+1:
		return fmt.Errorf("%s: chunk %d noted after %d", key, c.N, len(e.chunks))
	}
	e.chunks = append(e.chunks, c)
	return nil
}

func (l *memLedger) Done(_ context.Context, key string) error {
	l.db.mu.Lock()
	defer l.db.mu.Unlock()
	if o, ok := l.db.owners[key]; ok && o != l.node {
		return fmt.Errorf("%s: held by %s", key, o)
	}
	delete(l.db.owners, key)
	delete(l.db.entries, key)
	return nil
}

func (l *memLedger) Resume(_ context.Context, key string) (bool, error) {
	l.db.mu.Lock()
	defer l.db.mu.Unlock()
	if o, ok := l.db.owners[key]; ok && o != l.node {
		return false, nil
	}
	l.db.owners[key] = l.node
	return true, nil
}

func (l *memLedger) Orphans(_ context.Context, inHand func(string) bool) ([]Orphan, error) {
	l.db.mu.Lock()
	defer l.db.mu.Unlock()
	var out []Orphan
	for key, o := range l.db.owners {
		if o == l.node && inHand(key) || o != l.node && !l.db.dead[o] {
			continue
		}
		l.db.owners[key] = l.node
		e := l.db.entries[key]
		if e == nil {
			out = append(out, Orphan{Recording: Recording{Key: key}, Empty: true})
			continue
		}
		out = append(out, Orphan{Recording: e.rec, Chunks: append([]StoredChunk(nil), e.chunks...)})
	}
	return out, nil
}

func (l *memLedger) Known(_ context.Context, key string) (bool, error) {
	l.db.mu.Lock()
	defer l.db.mu.Unlock()
	_, owned := l.db.owners[key]
	return owned || l.db.entries[key] != nil, nil
}
