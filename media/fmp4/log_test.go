package fmp4

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeSegments appends n segments of video and audio bytes (each byte its segment's
// number) and returns them with the chunks that were sealed on the way.
func writeSegments(t *testing.T, l *Log, first, n int, video, audio int) ([]Segment, []*Chunk) {
	t.Helper()
	var segs []Segment
	var sealed []*Chunk
	for i := first; i < first+n; i++ {
		off, err := l.Append(bytes.Repeat([]byte{byte(i)}, video))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(bytes.Repeat([]byte{byte(i) | 0x80}, audio)); err != nil {
			t.Fatal(err)
		}
		s := Segment{Seq: i, Offset: off, Video: int64(video), Audio: int64(audio), Start: time.Duration(i) * time.Second,
			Duration: time.Second, Independent: true, Time: time.Unix(1700000000+int64(i), 0).UTC()}
		c, err := l.EndSegment(s, false)
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, s)
		if c != nil {
			sealed = append(sealed, c)
		}
	}
	return segs, sealed
}

func readRange(t *testing.T, l *Log, off, n int64) []byte {
	t.Helper()
	f, at, err := l.Open(off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLogChunksEndWithSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	init := []byte("init-segment")
	l, err := CreateLog(LogConfig{Dir: dir, ChunkSize: 1000, Init: init})
	if err != nil {
		t.Fatal(err)
	}
	segs, sealed := writeSegments(t, l, 0, 10, 300, 50)
	// 12 + 350 + 350 + 350 ≥ 1000: three segments per chunk.
	if len(sealed) != 3 {
		t.Fatalf("%d chunks sealed, want 3", len(sealed))
	}
	var end int64
	for i, c := range sealed {
		if c.N != i+1 || c.Start != end || len(c.Segments) != 3 || c.Segments[2].End() != c.Start+c.Size {
			t.Fatalf("chunk %d = %+v", i+1, c)
		}
		end = c.Start + c.Size
		info, err := os.Stat(c.Path)
		if err != nil || info.Size() != c.Size {
			t.Fatalf("chunk file %s: %v %v", c.Path, info, err)
		}
	}
	for _, s := range segs {
		b := readRange(t, l, s.Offset, s.Size())
		if b[0] != byte(s.Seq) || b[s.Video] != byte(s.Seq)|0x80 || b[len(b)-1] != byte(s.Seq)|0x80 {
			t.Fatalf("segment %d reads back wrong", s.Seq)
		}
	}
	if got := readRange(t, l, 0, int64(len(init))); !bytes.Equal(got, init) {
		t.Fatalf("init = %q", got)
	}
	if _, _, err := l.Open(segs[2].Offset, 400); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a range across two chunks: %v", err)
	}

	// The live window holds from chunk 3 on, an archive from chunk 2 on.
	l.Hold("archive", 2, 0)
	l.Hold("dvr", 3, 0)
	if _, err := os.Stat(sealed[0].Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("chunk 1, needed by no holder, still on disk: %v", err)
	}
	if _, err := os.Stat(sealed[1].Path); err != nil {
		t.Fatalf("chunk 2 held by the archive: %v", err)
	}
	if _, _, err := l.Open(segs[0].Offset, 10); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open released chunk: %v", err)
	}

	last, err := l.Seal()
	if err != nil || last == nil || last.N != 4 || len(last.Segments) != 1 {
		t.Fatalf("seal = %+v, %v", last, err)
	}
	if _, err := l.Append([]byte("late")); err == nil {
		t.Fatal("append after seal accepted")
	}
	l.Release("dvr")
	if _, err := os.Stat(dir); err != nil {
		t.Fatal("log removed while the archive holds it")
	}
	l.Release("archive")
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("log left on disk after every holder released it: %v", err)
	}
}

// A crash leaves a log whose last chunk ends in the middle of a segment and whose index
// may end with a torn line: ReadLog keeps the segments it can read whole.
func TestReadLogAfterCrash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	l, err := CreateLog(LogConfig{Dir: dir, ChunkSize: 1000, Init: []byte("init")})
	if err != nil {
		t.Fatal(err)
	}
	segs, sealed := writeSegments(t, l, 0, 5, 300, 50)
	if len(sealed) != 1 {
		t.Fatalf("%d chunks sealed", len(sealed))
	}
	// The next segment's video was appended, its index line torn.
	if _, err := l.Append(bytes.Repeat([]byte{9}, 300)); err != nil {
		t.Fatal(err)
	}
	l.Abandon()
	idx, err := os.OpenFile(filepath.Join(dir, indexName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = idx.WriteString(`{"seg":{"s":5,"o":`)
	idx.Close()

	st, err := ReadLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.InitSize != 4 || st.ChunkSize != 1000 || len(st.Chunks) != 2 {
		t.Fatalf("state = %+v", st)
	}
	got := st.Segments()
	if len(got) != 5 {
		t.Fatalf("%d segments read back, want 5", len(got))
	}
	for i := range got {
		if got[i] != segs[i] {
			t.Fatalf("segment %d = %+v, want %+v", i, got[i], segs[i])
		}
	}
	lastChunk := st.Chunks[1]
	info, err := os.Stat(lastChunk.Path)
	if err != nil || info.Size() != lastChunk.Size || lastChunk.Start+lastChunk.Size != segs[4].End() {
		t.Fatalf("last chunk %+v not cut at its last segment (file %v, %v)", lastChunk, info, err)
	}
	f, _ := os.Open(st.Chunks[0].Path)
	b, _ := io.ReadAll(f)
	f.Close()
	if !bytes.HasPrefix(b, []byte("init")) || int64(len(b)) != st.Chunks[0].Size {
		t.Fatalf("first chunk holds %d bytes", len(b))
	}
}
