package benchkit

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Input describes the benchmarks' input file.
type Input struct {
	File        string  `json:"file"`
	Encode      string  `json:"encode"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	BitrateKbps float64 `json:"bitrate_kbps"`
}

// inputArgs encode the input: 60 s of 720p30 test pattern, H.264 at about 2.5 Mbit/s
// with a 1 s GOP (as README.md tells OBS users to set), AAC 128 kbit/s, FLV.
func inputArgs(out string) []string {
	return strings.Fields("-hide_banner -loglevel error -nostdin -y -f lavfi -i testsrc2=size=1280x720:rate=30 " +
		"-f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 -c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p " +
		"-g 30 -keyint_min 30 -sc_threshold 0 -b:v 2500k -maxrate 2500k -bufsize 2500k -c:a aac -b:a 128k -ar 48000 -ac 2 -f flv " + out)
}

// PrepareInput encodes the input into r's output directory unless it is there already,
// and describes it; it returns its path.
func PrepareInput(ctx context.Context, r *Run) (string, Input, error) {
	path := filepath.Join(r.Out, "input-720p30.flv")
	in := Input{Encode: "ffmpeg " + strings.Join(inputArgs(path), " ")}
	in.File, _ = filepath.Rel(r.Root, path)
	if _, err := os.Stat(path); err != nil {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ffmpeg", inputArgs(path+".tmp.flv")...)
		cmd.SysProcAttr = ChildAttr()
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", in, fmt.Errorf("input: encode with ffmpeg: %w\n%s", err, out)
		}
		if err := os.Rename(path+".tmp.flv", path); err != nil {
			return "", in, err
		}
	}
	tags, err := ReadFLV(path)
	if err != nil {
		return "", in, err
	}
	in.Seconds = float64(tags[len(tags)-1].Timestamp-tags[0].Timestamp) / 1000
	for _, t := range tags {
		in.Bytes += int64(len(t.Data))
	}
	in.BitrateKbps = Ratio(float64(in.Bytes)*8/1000, in.Seconds)
	return path, in, nil
}

// FLV tag types.
const (
	TagAudio  = 8
	TagVideo  = 9
	TagScript = 18
)

// Tag is one tag of an FLV file: its type, its timestamp in milliseconds and its body
// (what an RTMP message carries; media/flv parses audio and video bodies).
type Tag struct {
	Type      byte
	Timestamp uint32
	Data      []byte
}

// ReadFLV reads a whole FLV file into memory (a minute of 720p is about 20 MB), so that
// publishers send from memory and disk reads never disturb their timing.
func ReadFLV(path string) ([]Tag, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var h [13]byte // file header and the first PreviousTagSize
	if _, err := io.ReadFull(r, h[:]); err != nil || string(h[:3]) != "FLV" {
		return nil, fmt.Errorf("%s: not an FLV file (%v)", path, err)
	}
	var tags []Tag
	for {
		var th [11]byte
		if _, err := io.ReadFull(r, th[:]); errors.Is(err, io.EOF) && len(tags) > 0 {
			return tags, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: tag %d: %w", path, len(tags), err)
		}
		size := binary.BigEndian.Uint32(th[0:4]) & 0xffffff
		t := Tag{Type: th[0] & 0x1f, Timestamp: binary.BigEndian.Uint32(th[3:7])&0xffffff | uint32(th[7])<<24, Data: make([]byte, size+4)}
		if _, err := io.ReadFull(r, t.Data); err != nil {
			return nil, fmt.Errorf("%s: tag %d: %w", path, len(tags), err)
		}
		t.Data = t.Data[:size] // without the PreviousTagSize that follows
		tags = append(tags, t)
	}
}

// StartFFmpeg starts one looping `ffmpeg -re -c copy` publisher of input to url, as an
// encoder would send.
func StartFFmpeg(input, url string) (*Process, error) {
	return StartProcess("ffmpeg", exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-re", "-stream_loop", "-1", "-i", input, "-c", "copy", "-f", "flv", url))
}
