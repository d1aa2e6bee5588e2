package oldkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// inputArgs encode the benchmark's input: 60 s of 720p30 test pattern, H.264 at about
// 2.5 Mbit/s with a 1 s GOP (as README.md tells OBS users to set), AAC 128 kbit/s, FLV.
func inputArgs(out string) []string {
	return []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "60",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
		"-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "2500k",
		"-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
		"-f", "flv", out}
}

// ensureInput encodes the input into path unless it is there already.
func EnsureInput(ctx context.Context, path string) (string, error) {
	args := inputArgs(path)
	desc := "ffmpeg " + strings.Join(args, " ")
	if _, err := os.Stat(path); err == nil {
		return desc, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("input: %w", err)
	}
	tmp := path + ".tmp.flv"
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", inputArgs(tmp)...)
	cmd.SysProcAttr = ChildAttr()
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("input: encode with ffmpeg: %w\n%s", err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("input: %w", err)
	}
	return desc, nil
}

// ffmpegPublishArgs send the input in real time as is, looping, as an encoder would.
func FfmpegPublishArgs(input, url string) []string {
	return []string{"-hide_banner", "-loglevel", "error", "-nostdin",
		"-re", "-stream_loop", "-1", "-i", input, "-c", "copy", "-f", "flv", url}
}

// startFFmpegPublisher starts one looping `ffmpeg -re -c copy` publisher.
func StartFFmpegPublisher(input, url string) (*Process, error) {
	return StartProcess("ffmpeg", exec.Command("ffmpeg", FfmpegPublishArgs(input, url)...))
}
