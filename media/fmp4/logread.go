package fmp4

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// LogState is a log's directory read back, after a crash or for recovery at start.
type LogState struct {
	Dir                 string
	InitSize, ChunkSize int64
	// Chunks are the log's chunks, in order: every sealed one, then the one being written
	// when the log was left, cut at the end of its last complete segment (it is dropped
	// when it holds none). A chunk whose file is gone (uploaded and released) has its
	// Path empty.
	Chunks []Chunk
}

// Segments lists the segments of every chunk, in order.
func (s LogState) Segments() []Segment {
	var out []Segment
	for _, c := range s.Chunks {
		out = append(out, c.Segments...)
	}
	return out
}

// ReadLog reads the log in dir. A torn last index line (a crash while writing it) is
// ignored, and so are segments whose bytes the disk does not hold: the state ends with the
// last segment that can be read whole.
func ReadLog(dir string) (LogState, error) {
	st := LogState{Dir: dir}
	f, err := os.Open(filepath.Join(dir, indexName))
	if err != nil {
		return st, fmt.Errorf("fmp4: read log %s: %w", dir, err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var segs []Segment
	var sealed []Chunk
	first := true
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // a line without its newline is torn
		}
		if err != nil {
			return st, fmt.Errorf("fmp4: read index of log %s: %w", dir, err)
		}
		var l indexLine
		if err := json.Unmarshal(line, &l); err != nil {
			return st, fmt.Errorf("fmp4: index line of log %s: %w", dir, err)
		}
		switch {
		case first:
			if l.Version != logVersion || l.InitSize <= 0 {
				return st, fmt.Errorf("fmp4: log %s: unsupported index header %s", dir, line)
			}
			st.InitSize, st.ChunkSize = l.InitSize, l.ChunkSize
			first = false
		case l.Segment != nil:
			segs = append(segs, *l.Segment)
		case l.Sealed != nil:
			c := Chunk{N: l.Sealed.N, Start: l.Sealed.Start, Size: l.Sealed.Size}
			for len(segs) > 0 && segs[0].End() <= c.Start+c.Size {
				c.Segments = append(c.Segments, segs[0])
				segs = segs[1:]
			}
			sealed = append(sealed, c)
		}
	}
	if first {
		return st, fmt.Errorf("fmp4: log %s: empty index", dir)
	}
	for _, c := range sealed {
		if info, err := os.Stat(chunkPath(dir, c.N)); err == nil && info.Size() == c.Size {
			c.Path = chunkPath(dir, c.N)
		}
		st.Chunks = append(st.Chunks, c)
	}
	last, err := lastChunk(dir, len(sealed)+1, sealed, segs, st.InitSize)
	if err != nil {
		return st, err
	}
	if last != nil {
		st.Chunks = append(st.Chunks, *last)
	}
	return st, nil
}

// lastChunk recovers chunk n, the one being written when the log was left: it keeps the
// indexed segments its file holds whole and cuts the file after the last of them.
func lastChunk(dir string, n int, sealed []Chunk, segs []Segment, initSize int64) (*Chunk, error) {
	path := chunkPath(dir, n)
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fmp4: recover chunk %d of log %s: %w", n, dir, err)
	}
	c := Chunk{N: n, Path: path}
	if len(sealed) > 0 {
		prev := sealed[len(sealed)-1]
		c.Start = prev.Start + prev.Size
	}
	end := c.Start + info.Size()
	for _, s := range segs {
		if s.Offset < c.Start || s.End() > end {
			break
		}
		c.Segments = append(c.Segments, s)
	}
	if len(c.Segments) == 0 {
		if n == 1 && info.Size() >= initSize {
			// Nothing but the init segment: a run that ended before its first segment.
			c.Size = initSize
			return &c, os.Truncate(path, initSize)
		}
		return nil, os.Remove(path)
	}
	c.Size = c.Segments[len(c.Segments)-1].End() - c.Start
	if c.Size < info.Size() {
		if err := os.Truncate(path, c.Size); err != nil {
			return nil, fmt.Errorf("fmp4: cut chunk %d of log %s at its last segment: %w", n, dir, err)
		}
	}
	return &c, nil
}
