package upload

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// memFile is a file in memory as a Source.
type memFile []byte

func (m memFile) Size() int64 { return int64(len(m)) }
func (m memFile) ReadAt(_ context.Context, off, n int64) ([]byte, error) {
	return bytes.Clone(m[off : off+n]), nil
}

// memSink collects what Remux writes, counting the writes.
type memSink struct{ bytes.Buffer }

func (s *memSink) Write(_ context.Context, p []byte) error { _, err := s.Buffer.Write(p); return err }

// ffmpegFile makes a test file with ffmpeg.
func ffmpegFile(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	base := []string{"-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "7", "-shortest"}
	cmd := exec.Command("ffmpeg", append(append(base, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// videoPackets are the MD5s of a file's video packets, in decode order, by ffprobe.
func videoPackets(t *testing.T, file []byte) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe.mp4")
	if err := os.WriteFile(p, file, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_data_hash", "md5",
		"-show_entries", "packet=data_hash", "-of", "csv=p=0", p).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	return strings.Fields(string(out))
}

func remux(t *testing.T, file []byte) (Result, []byte, error) {
	t.Helper()
	ctx := context.Background()
	m, err := Probe(ctx, memFile(file))
	if err != nil {
		return Result{}, nil, err
	}
	var sink memSink
	res, err := Remux(ctx, m, memFile(file), &sink)
	return res, sink.Bytes(), err
}

func TestRemuxKeepsEveryFrame(t *testing.T) {
	h264aac := []string{"-c:v", "libx264", "-g", "25", "-bf", "2", "-c:a", "aac"}
	for _, c := range []struct {
		name string
		file []byte
	}{
		{"moov at the end", ffmpegFile(t, "a.mp4", h264aac...)},
		{"moov at the start", ffmpegFile(t, "b.mp4", append(h264aac, "-movflags", "+faststart")...)},
		{"mov", ffmpegFile(t, "c.mov", h264aac...)},
		{"opus, long GOP", ffmpegFile(t, "d.mp4", "-c:v", "libx264", "-g", "100", "-c:a", "libopus")},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, out, err := remux(t, c.file)
			if err != nil {
				t.Fatal(err)
			}
			want, got := videoPackets(t, c.file), videoPackets(t, out)
			if len(want) < 150 || strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("video packets: %d in, %d out (or their hashes differ)", len(want), len(got))
			}
			if res.VideoSamples != len(want) || res.VideoCodec != "h264" || res.Width != 320 || res.Height != 240 {
				t.Fatalf("result %+v", res)
			}
			// The index covers the object: each segment starts with a fragment, with a key frame.
			off := res.InitSize
			for i, s := range res.Segments {
				if string(out[off+4:off+8]) != "moof" || !s.Key {
					t.Fatalf("segment %d at %d: %q, key %v", i, off, out[off+4:off+8], s.Key)
				}
				off += s.Size
			}
			if off != int64(len(out)) || res.Size != off {
				t.Fatalf("segments end at %d, object has %d bytes, result says %d", off, len(out), res.Size)
			}
			if res.Duration.Seconds() < 6.5 || res.Duration.Seconds() > 7.5 {
				t.Fatalf("duration %s", res.Duration)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	text := bytes.Repeat([]byte("this is a text file renamed to video.mp4\n"), 1000)
	mp3 := ffmpegFile(t, "e.mov", "-c:v", "libx264", "-c:a", "libmp3lame")
	mjpeg := ffmpegFile(t, "f.mov", "-c:v", "mjpeg", "-c:a", "aac")
	whole := ffmpegFile(t, "g.mp4", "-c:v", "libx264", "-c:a", "aac", "-movflags", "+faststart")
	for name, c := range map[string]struct {
		file []byte
		want string
	}{
		"text":      {text, "not an MP4"},
		"mp3 audio": {mp3, "AAC or Opus"},
		"mjpeg":     {mjpeg, "H.264, HEVC or AV1"},
		"truncated": {whole[:len(whole)/2], "truncated"},
		"empty":     {nil, "no movie header"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := remux(t, c.file)
			reason, ok := IsRefused(err)
			if !ok || !strings.Contains(reason, c.want) {
				t.Fatalf("err %v, want a refusal saying %q", err, c.want)
			}
		})
	}
}

// osFile is a file on disk as a Source.
type osFile struct{ f *os.File }

func (o osFile) Size() int64 { st, _ := o.f.Stat(); return st.Size() }
func (o osFile) ReadAt(_ context.Context, off, n int64) ([]byte, error) {
	b := make([]byte, n)
	_, err := o.f.ReadAt(b, off)
	return b, err
}

// discard counts what Remux writes.
type discard struct{ n int64 }

func (d *discard) Write(_ context.Context, p []byte) error { d.n += int64(len(p)); return nil }

// The remux holds a segment at a time, not the file: the heap stays far below the file's
// size while a 100 MB file is remuxed.
func TestRemuxMemoryIsBoundedBySegments(t *testing.T) {
	if testing.Short() {
		t.Skip("makes a 100 MB file")
	}
	path := filepath.Join(t.TempDir(), "long.mp4")
	cmd := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "32", "-shortest", "-vf", "noise=alls=30:allf=t",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-crf", "20", "-c:a", "aac", path)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src := osFile{f}
	ctx := context.Background()
	m, err := Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	// Collect often, so that the heap is what the remux holds rather than garbage.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	base := heapBytes()
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var top uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				peak <- top
				return
			case <-tick.C:
				top = max(top, heapBytes())
			}
		}
	}()
	var out discard
	res, err := Remux(ctx, m, src, &out)
	close(stop)
	top := <-peak
	if err != nil {
		t.Fatal(err)
	}
	grew := int64(top) - int64(base)
	t.Logf("remuxed %d bytes into %d in %d segments; the heap grew by at most %d bytes", src.Size(), out.n, len(res.Segments), grew)
	if src.Size() < 80<<20 || grew > src.Size()/4 {
		t.Fatalf("the heap grew by %d bytes remuxing a %d-byte file", grew, src.Size())
	}
}

func heapBytes() uint64 {
	// The heap live at the last collection: what the remux holds, not garbage waiting for
	// a collector slowed down by other tests running at the same time.
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
