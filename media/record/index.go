package record

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// index is a recording's fragment list on local disk, one JSON line per fragment after a
// header line with the Recording's fixed fields. It is what lets a crash be recovered up
// to the last complete fragment, and it is synced after every fragment.
type index struct {
	path string
	f    *os.File
}

func indexPath(dir, key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(dir, hex.EncodeToString(sum[:8])+".jsonl")
}

func createIndex(dir string, rec Recording) (*index, error) {
	path := indexPath(dir, rec.Key)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("record %s: create index: %w", rec.Key, err)
	}
	idx := &index{path: path, f: f}
	if err := idx.line(rec); err != nil {
		idx.remove()
		return nil, err
	}
	return idx, nil
}

func (x *index) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("record: encode index line: %w", err)
	}
	if _, err := x.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("record: write index %s: %w", x.path, err)
	}
	if err := x.f.Sync(); err != nil {
		return fmt.Errorf("record: sync index %s: %w", x.path, err)
	}
	return nil
}

func (x *index) add(f Fragment) error { return x.line(f) }

func (x *index) remove() {
	_ = x.f.Close()
	_ = os.Remove(x.path)
}

// readIndex loads a recording's header and the fragments it lists. A torn last line
// (a crash while writing it) is ignored: its fragment was never made durable in order.
func readIndex(path string) (Recording, error) {
	f, err := os.Open(path)
	if err != nil {
		return Recording{}, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var rec Recording
	header, err := r.ReadString('\n')
	if err != nil {
		return rec, fmt.Errorf("record: index %s has no header: %w", path, err)
	}
	if err := json.Unmarshal([]byte(header), &rec); err != nil {
		return rec, fmt.Errorf("record: index %s header: %w", path, err)
	}
	rec.Fragments = nil
	for {
		line, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) {
			break // a line without its newline is torn
		}
		if err != nil {
			return rec, fmt.Errorf("record: read index %s: %w", path, err)
		}
		var fr Fragment
		if err := json.Unmarshal([]byte(strings.TrimSpace(line)), &fr); err != nil {
			return rec, fmt.Errorf("record: index %s line: %w", path, err)
		}
		rec.Fragments = append(rec.Fragments, fr)
	}
	return rec, nil
}

// truncateTo keeps the fragments that end within size bytes.
func (rec *Recording) truncateTo(size int64) {
	n := 0
	for _, f := range rec.Fragments {
		if f.Offset+f.Size > size {
			break
		}
		n++
	}
	rec.Fragments = rec.Fragments[:n]
	rec.Size = rec.InitSize
	rec.Duration = 0
	if n > 0 {
		last := rec.Fragments[n-1]
		rec.Size = last.Offset + last.Size
		rec.Duration = last.Start + last.Duration
	}
	rec.EndedAt = rec.StartedAt.Add(rec.Duration)
}
