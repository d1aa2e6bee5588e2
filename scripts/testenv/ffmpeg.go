package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// PublishOptions describe the test pattern ffmpeg sends.
type PublishOptions struct {
	// Duration of the stream; 0 publishes until Stop.
	Duration time.Duration
	// Size is WxH; default 320x240.
	Size string
	// FPS defaults to 30; the key frame interval is one second (GOP = FPS), as README.md
	// tells OBS users to set.
	FPS int
	// NoAudio leaves out the sine-wave AAC track.
	NoAudio bool
	// ExtraArgs go before the output, e.g. to change the encoder settings.
	ExtraArgs []string
	// Copy, when set, is a file that gets an FLV copy of exactly what is sent.
	Copy string
}

// Publisher is a running ffmpeg.
type Publisher struct {
	cmd    *exec.Cmd
	stderr *Buffer
	done   chan struct{}
	err    error
}

// Publish starts ffmpeg publishing a test pattern (testsrc2 + sine, libx264 tune
// zerolatency, AAC) to url in real time, as OBS would.
func Publish(t testing.TB, url string, opts PublishOptions) *Publisher {
	t.Helper()
	if opts.Size == "" {
		opts.Size = "320x240"
	}
	if opts.FPS == 0 {
		opts.FPS = 30
	}
	args := []string{"-hide_banner", "-loglevel", "warning", "-nostdin", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=%d", opts.Size, opts.FPS)}
	if !opts.NoAudio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
	}
	if opts.Duration > 0 {
		args = append(args, "-t", strconv.FormatFloat(opts.Duration.Seconds(), 'f', 3, 64))
	}
	gop := strconv.Itoa(opts.FPS)
	args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
		"-pix_fmt", "yuv420p", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-b:v", "500k")
	if !opts.NoAudio {
		args = append(args, "-c:a", "aac", "-b:a", "64k", "-ar", "48000", "-ac", "2")
	}
	args = append(args, opts.ExtraArgs...)
	if opts.Copy == "" {
		args = append(args, "-f", "flv", url)
		return startFFmpeg(t, args)
	}
	// The same packets to the server and to the file: what the server was sent. Behind
	// tee the encoders must put their configuration in the headers themselves.
	args = append(args, "-flags", "+global_header", "-map", "0:v")
	if !opts.NoAudio {
		args = append(args, "-map", "1:a")
	}
	args = append(args, "-f", "tee", "[f=flv:onfail=abort]"+url+"|[f=flv]"+opts.Copy)
	return startFFmpeg(t, args)
}

// PublishFile sends a pre-encoded file as is (-c copy), looping it until Stop when loop
// is set.
func PublishFile(t testing.TB, url, file string, loop bool) *Publisher {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "warning", "-nostdin", "-re"}
	if loop {
		args = append(args, "-stream_loop", "-1")
	}
	args = append(args, "-i", file, "-c", "copy", "-f", "flv", url)
	return startFFmpeg(t, args)
}

func startFFmpeg(t testing.TB, args []string) *Publisher {
	t.Helper()
	path, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is required (scripts/deps.sh installs it): %v", err)
	}
	cmd := exec.Command(path, args...)
	p := &Publisher{cmd: cmd, stderr: &Buffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ffmpeg: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Done is closed when ffmpeg has exited.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Wait waits for ffmpeg to exit, at most timeout, and returns its error.
func (p *Publisher) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("ffmpeg still running after %s", timeout)
	}
}

// Stop asks ffmpeg to finish cleanly (as when a streamer clicks Stop Streaming) and waits.
func (p *Publisher) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	err := p.Wait(10 * time.Second)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 255 {
		return nil // ffmpeg's status for "interrupted by signal", after closing the output
	}
	if err != nil {
		p.Kill()
	}
	return err
}

// Kill ends ffmpeg at once, as a crashed encoder or a pulled cable would.
func (p *Publisher) Kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Signal sends sig to ffmpeg, e.g. SIGSTOP to freeze it without closing its connection.
func (p *Publisher) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stderr is what ffmpeg printed.
func (p *Publisher) Stderr() string { return p.stderr.String() }

// FFmpeg runs ffmpeg with args as given, e.g. one encoder with several outputs; it is
// killed when the test ends.
func FFmpeg(t testing.TB, args []string) *Publisher {
	t.Helper()
	return startFFmpeg(t, args)
}
