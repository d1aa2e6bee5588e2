package fmp4

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// On disk, a run's log is a directory:
//
//	chunk-000001   the init segment (both tracks), then fragments, in the order written
//	chunk-000002   ... each chunk about ChunkSize bytes, ending where a segment ends
//	index          one JSON line per complete segment and per sealed chunk
//
// Offsets count from the start of chunk 1 across the chunks: the chunks put end to end
// are the recording's MP4 file, and a segment's offset is its offset in that file. Every
// segment lies within one chunk, so that a chunk uploaded on its own holds whole segments
// and a byte range of a segment is one read of one file.
//
// Nothing is synced on the writer's way: a process that crashes leaves its writes in the
// page cache, which the next start reads back, and the live stream never waits for a disk
// busy flushing. Whoever keeps a sealed chunk beyond the page cache (the recording) syncs
// it on its own time.
const (
	indexName    = "index"
	chunkPattern = "chunk-%06d"
	logVersion   = 1
)

// ErrLogFailed wraps every error writing a log: the log takes nothing more after one.
var ErrLogFailed = errors.New("fmp4: log write failed")

// Segment is a complete segment of the log: its video fragments, then its audio
// fragments, one contiguous byte range.
type Segment struct {
	// Seq is its media sequence number; the first segment of a run is 0.
	Seq    int   `json:"s"`
	Offset int64 `json:"o"`
	// Video and Audio are the bytes of its video fragments and, after them, of its audio
	// fragments.
	Video int64 `json:"v"`
	Audio int64 `json:"a"`
	// Start is the media time of its first sample, from the run's first key frame.
	Start    time.Duration `json:"t"`
	Duration time.Duration `json:"d"`
	// Independent: it starts with a key frame (audio-only runs: always).
	Independent bool `json:"k"`
	// Discontinuity: the first segment after a publisher reconnected to the run.
	Discontinuity bool `json:"c,omitempty"`
	// Time is the wall-clock time of its first sample (its PROGRAM-DATE-TIME).
	Time time.Time `json:"w"`
}

// Size is the segment's length in bytes.
func (s Segment) Size() int64 { return s.Video + s.Audio }

// End is the offset just past the segment.
func (s Segment) End() int64 { return s.Offset + s.Size() }

// Chunk is a sealed chunk of the log.
type Chunk struct {
	// N counts from 1.
	N     int
	Start int64
	Size  int64
	// Segments are those the chunk holds, in order.
	Segments []Segment
	// Path is the chunk's file (gone once every holder released it).
	Path string
}

// LogConfig configures CreateLog.
type LogConfig struct {
	// Dir is the run's directory; it must not exist yet.
	Dir string
	// ChunkSize: a chunk is sealed at the end of the first segment that brings it to at
	// least this many bytes.
	ChunkSize int64
	// Init is the init segment of every track, at the start of the log.
	Init []byte
}

// indexLine is one line of the index file: the header, a segment or a sealed chunk.
type indexLine struct {
	Version   int      `json:"version,omitempty"`
	InitSize  int64    `json:"init,omitempty"`
	ChunkSize int64    `json:"chunk_size,omitempty"`
	Segment   *Segment `json:"seg,omitempty"`
	Sealed    *struct {
		N     int   `json:"n"`
		Start int64 `json:"o"`
		Size  int64 `json:"size"`
	} `json:"sealed,omitempty"`
}

// Log is one run's log being written. Append and EndSegment are called by one writer;
// the other methods may be called from anywhere.
type Log struct {
	dir       string
	chunkSize int64
	initSize  int64

	mu      sync.Mutex
	index   *os.File
	cur     *os.File // the chunk being appended to
	chunks  []*chunkFile
	pending []Segment         // segments of the current chunk
	size    int64             // bytes written in all
	holds   map[string][2]int // holder → the chunks it needs, from..to
	sealed  bool              // the last chunk is sealed: nothing more is written
	removed bool
	err     error // a failed write: the log takes no more
}

type chunkFile struct {
	n           int
	start, size int64
	sealed      bool
	gone        bool
}

// CreateLog creates the run's directory and its first chunk, holding cfg.Init.
func CreateLog(cfg LogConfig) (*Log, error) {
	if cfg.ChunkSize <= 0 || len(cfg.Init) == 0 {
		return nil, fmt.Errorf("fmp4: create log in %s: ChunkSize and Init are required", cfg.Dir)
	}
	if err := os.Mkdir(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("fmp4: create log: %w", err)
	}
	l := &Log{dir: cfg.Dir, chunkSize: cfg.ChunkSize, initSize: int64(len(cfg.Init)), holds: map[string][2]int{}}
	var err error
	l.index, err = os.OpenFile(filepath.Join(cfg.Dir, indexName), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err == nil {
		err = l.line(indexLine{Version: logVersion, InitSize: l.initSize, ChunkSize: cfg.ChunkSize})
	}
	if err == nil {
		err = l.openChunkLocked()
	}
	if err == nil {
		_, err = l.appendLocked(cfg.Init)
	}
	if err != nil {
		l.closeFiles()
		_ = os.RemoveAll(cfg.Dir)
		return nil, fmt.Errorf("fmp4: create log in %s: %w", cfg.Dir, err)
	}
	return l, nil
}

// Dir is the run's directory.
func (l *Log) Dir() string { return l.dir }

// InitSize is the length of the init segment at the start of the log.
func (l *Log) InitSize() int64 { return l.initSize }

func chunkPath(dir string, n int) string { return filepath.Join(dir, fmt.Sprintf(chunkPattern, n)) }

func (l *Log) line(v indexLine) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = l.index.Write(append(b, '\n'))
	return err
}

func (l *Log) openChunkLocked() error {
	n := len(l.chunks) + 1
	f, err := os.OpenFile(chunkPath(l.dir, n), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	l.cur = f
	l.chunks = append(l.chunks, &chunkFile{n: n, start: l.size})
	return nil
}

func (l *Log) appendLocked(p []byte) (int64, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.sealed {
		return 0, fmt.Errorf("%w: append to %s, which is sealed", ErrLogFailed, l.dir)
	}
	off := l.size
	n, err := l.cur.Write(p)
	l.size += int64(n)
	l.chunks[len(l.chunks)-1].size += int64(n)
	if err != nil {
		l.err = fmt.Errorf("%w: append %d bytes to %s at %d: %w", ErrLogFailed, len(p), l.dir, off, err)
		return 0, l.err
	}
	return off, nil
}

// Append writes p, one fragment or several, at the end of the log with one write, and
// returns its offset.
func (l *Log) Append(p []byte) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appendLocked(p)
}

// EndSegment records a complete segment, whose bytes were appended, in the index. When
// its chunk has reached ChunkSize, or seal is set, the chunk is sealed (closed, and the
// next one started) and returned.
func (l *Log) EndSegment(s Segment, seal bool) (*Chunk, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	if err := l.line(indexLine{Segment: &s}); err != nil {
		l.err = fmt.Errorf("%w: index segment %d of %s: %w", ErrLogFailed, s.Seq, l.dir, err)
		return nil, l.err
	}
	l.pending = append(l.pending, s)
	if !seal && l.chunks[len(l.chunks)-1].size < l.chunkSize {
		return nil, nil
	}
	c, err := l.sealLocked()
	if err == nil {
		err = l.openChunkLocked()
	}
	if err != nil {
		l.err = fmt.Errorf("%w: seal a chunk of %s: %w", ErrLogFailed, l.dir, err)
		return nil, l.err
	}
	return c, nil
}

func (l *Log) sealLocked() (*Chunk, error) {
	cf := l.chunks[len(l.chunks)-1]
	// Bytes after the last complete segment (a writer that failed mid-segment) belong to
	// nothing: the chunk ends with its last segment.
	keep := cf.size
	if len(l.pending) > 0 {
		keep = l.pending[len(l.pending)-1].End() - cf.start
	} else if cf.n == 1 {
		keep = l.initSize
	}
	if keep < cf.size {
		if err := l.cur.Truncate(keep); err != nil {
			return nil, err
		}
		l.size -= cf.size - keep
		cf.size = keep
	}
	if err := l.cur.Close(); err != nil {
		return nil, err
	}
	l.cur = nil
	sealed := indexLine{}
	sealed.Sealed = &struct {
		N     int   `json:"n"`
		Start int64 `json:"o"`
		Size  int64 `json:"size"`
	}{cf.n, cf.start, cf.size}
	if err := l.line(sealed); err != nil {
		return nil, err
	}
	cf.sealed = true
	c := &Chunk{N: cf.n, Start: cf.start, Size: cf.size, Segments: l.pending, Path: chunkPath(l.dir, cf.n)}
	l.pending = nil
	return c, nil
}

// Seal ends the log: its last chunk is sealed and returned (nil when it holds no complete
// segment, and is dropped). Nothing can be appended afterwards.
func (l *Log) Seal() (*Chunk, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sealed {
		return nil, nil
	}
	l.sealed = true
	if l.err != nil {
		return nil, l.err
	}
	if len(l.pending) == 0 && len(l.chunks) > 1 {
		// Only bytes of a segment that never completed: nobody will read them.
		cf := l.chunks[len(l.chunks)-1]
		_ = l.cur.Close()
		l.cur = nil
		cf.sealed, cf.gone = true, true
		_ = os.Remove(chunkPath(l.dir, cf.n))
		return nil, nil
	}
	c, err := l.sealLocked()
	if err != nil {
		l.err = fmt.Errorf("%w: seal the last chunk of %s: %w", ErrLogFailed, l.dir, err)
		return nil, l.err
	}
	return c, nil
}

// Open opens the chunk file that holds the n bytes at offset off and returns it with the
// offset of those bytes in the file. errors.Is(err, os.ErrNotExist) when they left the
// disk.
func (l *Log) Open(off, n int64) (*os.File, int64, error) {
	l.mu.Lock()
	i := sort.Search(len(l.chunks), func(i int) bool { return l.chunks[i].start+l.chunks[i].size > off })
	var cf chunkFile
	if i < len(l.chunks) {
		cf = *l.chunks[i]
	}
	l.mu.Unlock()
	if i == len(l.chunks) || off < cf.start || off+n > cf.start+cf.size {
		return nil, 0, fmt.Errorf("fmp4: %d bytes at %d are not in one chunk of log %s: %w", n, off, l.dir, os.ErrNotExist)
	}
	if cf.gone {
		return nil, 0, fmt.Errorf("fmp4: chunk %d of log %s was released: %w", cf.n, l.dir, os.ErrNotExist)
	}
	f, err := os.Open(chunkPath(l.dir, cf.n))
	if err != nil {
		return nil, 0, fmt.Errorf("fmp4: open chunk %d of log %s: %w", cf.n, l.dir, err)
	}
	return f, off - cf.start, nil
}

// ChunkOf is the number of the chunk holding offset off (0: none).
func (l *Log) ChunkOf(off int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.chunks), func(i int) bool { return l.chunks[i].start+l.chunks[i].size > off })
	if i == len(l.chunks) {
		return 0
	}
	return l.chunks[i].n
}

// Hold says that holder needs the chunks numbered from..to (to ≤ 0: every chunk from
// from on). Sealed chunks that no holder needs any more are deleted; a log that no holder
// needs once sealed is removed with its directory.
func (l *Log) Hold(holder string, from, to int) {
	if to <= 0 {
		to = int(^uint(0) >> 1)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holds[holder] = [2]int{from, to}
	l.trimLocked()
}

// Release says that holder needs nothing more of the log.
func (l *Log) Release(holder string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holds[holder] = [2]int{1, 0}
	l.trimLocked()
}

func (l *Log) trimLocked() {
	needed := func(n int) bool {
		for _, h := range l.holds {
			if n >= h[0] && n <= h[1] {
				return true
			}
		}
		return false
	}
	for _, cf := range l.chunks {
		if !cf.sealed || cf.gone || needed(cf.n) {
			continue
		}
		if err := os.Remove(chunkPath(l.dir, cf.n)); err == nil || errors.Is(err, os.ErrNotExist) {
			cf.gone = true
		}
	}
	if !l.sealed || l.removed {
		return
	}
	for _, cf := range l.chunks {
		if !cf.gone {
			return
		}
	}
	l.removed = true
	l.closeFiles()
	_ = os.RemoveAll(l.dir)
}

// Abandon closes the log's files and leaves its directory as a crash would, for the next
// start to read back.
func (l *Log) Abandon() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sealed = true
	l.closeFiles()
}

func (l *Log) closeFiles() {
	if l.cur != nil {
		_ = l.cur.Close()
		l.cur = nil
	}
	if l.index != nil {
		_ = l.index.Close()
		l.index = nil
	}
}
