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
	rec      Recording
	uploadID string
	frags    []Fragment
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

func (db *ledgerDB) setOwner(key, node string) {
	db.mu.Lock()
	db.owners[key] = node
	db.mu.Unlock()
}

// fragments returns what the ledger holds of key's index.
func (db *ledgerDB) fragments(key string) []Fragment {
	db.mu.Lock()
	defer db.mu.Unlock()
	if e := db.entries[key]; e != nil {
		return append([]Fragment(nil), e.frags...)
	}
	return nil
}

func (db *ledgerDB) known(key string) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	_, ok := db.owners[key]
	return ok
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

func (l *memLedger) Upload(_ context.Context, key, uploadID string) error {
	l.db.mu.Lock()
	defer l.db.mu.Unlock()
	l.db.entries[key].uploadID = uploadID
	return nil
}

func (l *memLedger) Stored(_ context.Context, key string, first int, frags []Fragment) error {
	l.db.mu.Lock()
	defer l.db.mu.Unlock()
	e := l.db.entries[key]
	if first != len(e.frags) {
		return fmt.Errorf("%s: fragments from %d stored after %d", key, first, len(e.frags))
	}
	e.frags = append(e.frags, frags...)
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
		rec := e.rec
		rec.Fragments = append([]Fragment(nil), e.frags...)
		out = append(out, Orphan{Recording: rec, UploadID: e.uploadID})
	}
	return out, nil
}

func (l *memLedger) Known(_ context.Context, key string) (bool, error) {
	l.db.mu.Lock()
	defer l.db.mu.Unlock()
	_, owned := l.db.owners[key]
	return owned || l.db.entries[key] != nil, nil
}
