package testenv

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/vp9"
	"github.com/sirupsen/logrus"
	gortmp "github.com/yutopp/go-rtmp"
	rtmpmsg "github.com/yutopp/go-rtmp/message"
)

// Enhanced RTMP publishing, as a current OBS does for HEVC and AV1. Debian's ffmpeg 5.1
// cannot send Enhanced RTMP, so ffmpeg encodes a test pattern (and a tone) to a file and
// this client packs it into FourCC video and audio tags (veovera enhanced-rtmp v1, v2).

// EnhancedCodec is a FourCC onair accepts.
type EnhancedCodec string

// The Enhanced RTMP codecs.
const (
	HEVC EnhancedCodec = "hvc1"
	AV1  EnhancedCodec = "av01"
	VP9  EnhancedCodec = "vp09"
)

// EnhancedAudio is an Enhanced RTMP audio FourCC.
type EnhancedAudio string

// The Enhanced RTMP audio codecs the test publisher sends: Opus, which onair serves, and
// AC-3, which it refuses (the clip's AC-3 frames are the FourCC only: onair refuses before
// it would look inside).
const (
	Opus EnhancedAudio = "Opus"
	FLAC EnhancedAudio = "fLaC"
	AC3  EnhancedAudio = "ac-3"
)

// audioClip is a clip's audio: its sequence start and 20 ms packets.
type audioClip struct {
	fourCC  EnhancedAudio
	config  []byte
	packets [][]byte
}

// frame is one coded picture and whether it is a key frame.
type frame struct {
	data []byte // length-prefixed NAL units (HEVC) or low-overhead OBUs (AV1)
	key  bool
}

// EnhancedClip is a coded test pattern ready to publish.
type EnhancedClip struct {
	codec  EnhancedCodec
	config []byte
	frames []frame
	audio  *audioClip
	// tracks are further video tracks (ids 1, 2, ...), sent as OBS sends them: each
	// message in a one-track multitrack wrapper, after track 0's plain one.
	tracks []videoTrack
}

// EncodeEnhanced encodes seconds of testsrc2 at 30 fps with codec.
func EncodeEnhanced(t testing.TB, codec EnhancedCodec, seconds int) *EnhancedClip {
	t.Helper()
	config, frames := encodeEnhanced(t, codec, seconds, "320x240")
	return &EnhancedClip{codec: codec, config: config, frames: frames}
}

// EncodeEnhancedLadder encodes a clip with several video tracks of codec, one per size
// ("WxH", the first is track 0) with key frames at the same times, and audio: published,
// it is an Enhanced RTMP v2 multitrack stream as OBS's multitrack video sends one.
func EncodeEnhancedLadder(t testing.TB, codec EnhancedCodec, audio EnhancedAudio, seconds int, sizes ...string) *EnhancedClip {
	t.Helper()
	c := &EnhancedClip{codec: codec, audio: encodeAudio(t, audio, seconds)}
	for i, size := range sizes {
		config, frames := encodeEnhanced(t, codec, seconds, size)
		if i == 0 {
			c.config, c.frames = config, frames
			continue
		}
		if len(frames) != len(c.frames) {
			t.Fatalf("track %d has %d frames, track 0 %d", i, len(frames), len(c.frames))
		}
		c.tracks = append(c.tracks, videoTrack{config: config, frames: frames})
	}
	return c
}

// videoTrack is a further video track of a multitrack clip.
type videoTrack struct {
	config []byte
	frames []frame
}

// EncodeEnhancedAV is EncodeEnhanced with an audio track: a 440 Hz tone, 48 kHz stereo.
func EncodeEnhancedAV(t testing.TB, codec EnhancedCodec, audio EnhancedAudio, seconds int) *EnhancedClip {
	t.Helper()
	c := EncodeEnhanced(t, codec, seconds)
	c.audio = encodeAudio(t, audio, seconds)
	return c
}

// Publish sends the clip to url (rtmp://host:port/app/key) in real time. It returns when
// the whole clip is sent or ctx ends, closing the connection as OBS does when the
// streamer stops. It is safe to call from any goroutine.
func (c *EnhancedClip) Publish(ctx context.Context, url string) error {
	codec, config, frames := c.codec, c.config, c.frames

	rest := strings.TrimPrefix(url, "rtmp://")
	hostport, path, _ := strings.Cut(rest, "/")
	app, key, _ := strings.Cut(path, "/")
	quiet := logrus.New()
	quiet.Out = io.Discard
	client, err := gortmp.Dial("rtmp", hostport, &gortmp.ConnConfig{Logger: quiet})
	if err != nil {
		return fmt.Errorf("dial %s: %w", hostport, err)
	}
	defer client.Close()
	if err := client.Connect(&rtmpmsg.NetConnectionConnect{Command: rtmpmsg.NetConnectionConnectCommand{
		App: app, Type: "nonprivate", FlashVer: "FMLE/3.0", TCURL: "rtmp://" + hostport + "/" + app,
	}}); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	stream, err := client.CreateStream(nil, 4096)
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	if err := stream.Publish(&rtmpmsg.NetStreamPublish{PublishingName: key, PublishingType: "live"}); err != nil {
		return fmt.Errorf("publish: %w", err)
	}

	send := func(ts uint32, body []byte) error {
		return stream.Write(6, ts, &rtmpmsg.VideoMessage{Payload: bytes.NewReader(body)})
	}
	sendAudio := func(packetType byte, ts uint32, body []byte) error {
		// ExHeader sound format 9, packet type, FourCC.
		b := append([]byte{9<<4 | packetType}, c.audio.fourCC...)
		return stream.Write(4, ts, &rtmpmsg.AudioMessage{Payload: bytes.NewReader(append(b, body...))})
	}
	var audioSent int
	// Sequence start: ExHeader bit, key frame type, packet type 0, FourCC, config record.
	head := []byte{0x80 | 1<<4} // packet type 0
	head = append(head, codec...)
	if err := send(0, append(head, config...)); err != nil {
		return fmt.Errorf("send sequence start: %w", err)
	}
	// A further track's message: ExHeader bit, frame type, packet type 6 (multitrack);
	// one-track type and the packet type; FourCC; track id; the body.
	sendTrack := func(id int, frameType, packetType byte, ts uint32, body []byte) error {
		b := append([]byte{0x80 | frameType<<4 | 6, packetType}, codec...)
		return send(ts, append(append(b, byte(id)), body...))
	}
	for i, tr := range c.tracks {
		if err := sendTrack(i+1, 1, 0, 0, tr.config); err != nil {
			return fmt.Errorf("send track %d sequence start: %w", i+1, err)
		}
	}
	if c.audio != nil {
		if err := sendAudio(0, 0, c.audio.config); err != nil {
			return fmt.Errorf("send audio sequence start: %w", err)
		}
	}
	start := time.Now()
	for i, f := range frames {
		ts := uint32(i * 1000 / 30)
		if wait := time.Until(start.Add(time.Duration(ts) * time.Millisecond)); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		frameType := byte(2)
		if f.key {
			frameType = 1
		}
		// CodedFramesX (3): no composition time; the clips have no B-frames.
		b := []byte{0x80 | frameType<<4 | 3}
		b = append(b, codec...)
		if err := send(ts, append(b, f.data...)); err != nil {
			return fmt.Errorf("send frame %d: %w", i, err)
		}
		for k, tr := range c.tracks {
			ft := byte(2)
			if tr.frames[i].key {
				ft = 1
			}
			if err := sendTrack(k+1, ft, 3, ts, tr.frames[i].data); err != nil {
				return fmt.Errorf("send track %d frame %d: %w", k+1, i, err)
			}
		}
		// The audio packets (20 ms each) up to this picture's time.
		for c.audio != nil && audioSent < len(c.audio.packets) && uint32(audioSent*20) <= ts {
			if err := sendAudio(1, uint32(audioSent*20), c.audio.packets[audioSent]); err != nil {
				return fmt.Errorf("send audio packet %d: %w", audioSent, err)
			}
			audioSent++
		}
	}
	return nil
}

func encodeEnhanced(t testing.TB, codec EnhancedCodec, seconds int, size string) ([]byte, []frame) {
	t.Helper()
	dir := t.TempDir()
	src := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi",
		"-i", "testsrc2=size=" + size + ":rate=30", "-t", fmt.Sprint(seconds), "-pix_fmt", "yuv420p"}
	switch codec {
	case HEVC:
		out := filepath.Join(dir, "clip.hevc")
		runFFmpeg(t, append(src, "-c:v", "libx265", "-preset", "ultrafast",
			"-x265-params", "log-level=error:keyint=30:min-keyint=30:scenecut=0:bframes=0:aud=1:repeat-headers=1",
			"-f", "hevc", out)...)
		return hevcClip(t, out)
	case AV1:
		out := filepath.Join(dir, "clip.ivf")
		runFFmpeg(t, append(src, "-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime",
			"-g", "30", "-keyint_min", "30", "-b:v", "300k", "-f", "ivf", out)...)
		return av1Clip(t, out)
	case VP9:
		out := filepath.Join(dir, "clip.ivf")
		runFFmpeg(t, append(src, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
			"-g", "30", "-keyint_min", "30", "-b:v", "300k", "-f", "ivf", out)...)
		return vp9Clip(t, out)
	}
	t.Fatalf("unknown codec %q", codec)
	return nil, nil
}

func runFFmpeg(t testing.TB, args ...string) {
	t.Helper()
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
}

// hevcClip splits an Annex B stream at its access unit delimiters.
func hevcClip(t testing.TB, path string) ([]byte, []frame) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	nalus := splitAnnexB(raw)
	var vps, sps, pps []byte
	var frames []frame
	var cur *frame
	for _, n := range nalus {
		typ := (n[0] >> 1) & 0x3f
		switch {
		case typ == 35: // AUD starts an access unit
			frames = append(frames, frame{})
			cur = &frames[len(frames)-1]
			continue
		case typ == 32:
			vps = n
		case typ == 33:
			sps = n
		case typ == 34:
			pps = n
		case typ >= 16 && typ <= 21:
			cur.key = true
		}
		if cur == nil {
			t.Fatal("hevc clip does not start with an access unit delimiter")
		}
		cur.data = binary.BigEndian.AppendUint32(cur.data, uint32(len(n)))
		cur.data = append(cur.data, n...)
	}
	if vps == nil || sps == nil || pps == nil || len(sps) < 15 {
		t.Fatal("hevc clip has no parameter sets")
	}
	// HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1), profile fields copied from the SPS.
	rec := []byte{1}
	rec = append(rec, sps[3:15]...) // profile space/tier/idc, compatibility, constraints, level
	rec = append(rec, 0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 3)
	for _, ps := range []struct {
		typ byte
		nal []byte
	}{{32, vps}, {33, sps}, {34, pps}} {
		rec = append(rec, 0x80|ps.typ, 0, 1)
		rec = binary.BigEndian.AppendUint16(rec, uint16(len(ps.nal)))
		rec = append(rec, ps.nal...)
	}
	return rec, frames
}

// av1Clip reads an IVF file: each frame is one temporal unit of low-overhead OBUs.
func av1Clip(t testing.TB, path string) ([]byte, []frame) {
	t.Helper()
	var seqHeader []byte
	var frames []frame
	for _, data := range ivfFrames(t, path) {
		fr := frame{data: data}
		for pos := 0; pos < len(data); {
			typ := (data[pos] >> 3) & 0x0f
			hasExt := data[pos]&0x04 != 0
			hl := 1
			if hasExt {
				hl = 2
			}
			var size av1.LEB128
			n, err := size.Unmarshal(data[pos+hl:])
			if err != nil {
				t.Fatalf("av1 clip: OBU size: %v", err)
			}
			end := pos + hl + n + int(size)
			if typ == 1 { // sequence header: key frames carry one
				fr.key = true
				seqHeader = data[pos:end]
			}
			pos = end
		}
		frames = append(frames, fr)
	}
	if seqHeader == nil {
		t.Fatal("av1 clip has no sequence header")
	}
	// AV1CodecConfigurationRecord: marker/version, profile/level, flags (4:2:0), no delay,
	// then the sequence header OBU as configOBUs.
	rec := append([]byte{0x81, 0x00, 0x0c, 0x00}, seqHeader...)
	return rec, frames
}

// splitAnnexB cuts a byte stream at its 00 00 01 start codes.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				out = append(out, bytes.TrimRight(b[start:i], "\x00"))
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

// ivfFrames reads the frames of an IVF file.
func ivfFrames(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := make([]byte, 32)
	if _, err := io.ReadFull(f, hdr); err != nil || string(hdr[:4]) != "DKIF" {
		t.Fatalf("%s is not IVF: %v", path, err)
	}
	var frames [][]byte
	for {
		fh := make([]byte, 12)
		if _, err := io.ReadFull(f, fh); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, binary.LittleEndian.Uint32(fh[:4]))
		if _, err := io.ReadFull(f, data); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, data)
	}
	return frames
}

// VP9ClipLevel is the level the VP9 clip's configuration record names (2.1, right for
// 320x240 at 30 fps), which the playlists' CODECS must repeat.
const VP9ClipLevel = 21

// vp9Clip reads an IVF file of VP9 frames (superframes, as libvpx packs them).
func vp9Clip(t testing.TB, path string) ([]byte, []frame) {
	t.Helper()
	var frames []frame
	for _, data := range ivfFrames(t, path) {
		frames = append(frames, frame{data: data, key: vp9.IsRandomAccess(data)})
	}
	if len(frames) == 0 || !frames[0].key {
		t.Fatal("vp9 clip does not start with a key frame")
	}
	// VPCodecConfigurationRecord as FFmpeg sends it, behind vpcC's version 1 and flags:
	// profile 0, the level, 8 bits with 4:2:0 colocated chroma, BT.709, no init data.
	return []byte{1, 0, 0, 0, 0, VP9ClipLevel, 8<<4 | 1<<1, 1, 1, 1, 0, 0}, frames
}

func encodeAudio(t testing.TB, codec EnhancedAudio, seconds int) *audioClip {
	t.Helper()
	dir := t.TempDir()
	src := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi",
		"-i", "sine=frequency=440:sample_rate=48000", "-t", fmt.Sprint(seconds), "-ac", "2"}
	switch codec {
	case Opus:
		out := filepath.Join(dir, "tone.ogg")
		runFFmpeg(t, append(src, "-c:a", "libopus", "-b:a", "64k", "-frame_duration", "20", "-f", "ogg", out)...)
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		packets := oggPackets(t, raw)
		// OpusHead, OpusTags, then the audio.
		if len(packets) < 3 || !bytes.HasPrefix(packets[0], []byte("OpusHead")) {
			t.Fatalf("%s: no OpusHead", out)
		}
		return &audioClip{fourCC: codec, config: packets[0], packets: packets[2:]}
	case FLAC:
		// Ogg FLAC (20 ms blocks, like the Opus packets): its first packet holds "fLaC" and
		// the STREAMINFO block behind a 9-byte mapping header; frames start with their
		// sync code, other packets are metadata.
		out := filepath.Join(dir, "tone.oga")
		runFFmpeg(t, append(src, "-c:a", "flac", "-frame_size", "960", "-f", "ogg", out)...)
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		packets := oggPackets(t, raw)
		if len(packets) < 2 || !bytes.HasPrefix(packets[0], []byte("\x7fFLAC")) || len(packets[0]) < 9+4+4+34 {
			t.Fatalf("%s: no Ogg FLAC header", out)
		}
		var frames [][]byte
		for _, p := range packets[1:] {
			if len(p) > 1 && p[0] == 0xff && p[1]&0xfe == 0xf8 {
				frames = append(frames, p)
			}
		}
		return &audioClip{fourCC: codec, config: packets[0][9:], packets: frames}
	case AC3:
		packets := make([][]byte, seconds*50)
		for i := range packets {
			packets[i] = []byte{0x0b, 0x77, 0, 0}
		}
		return &audioClip{fourCC: codec, packets: packets}
	}
	t.Fatalf("unknown audio codec %q", codec)
	return nil
}

// oggPackets reassembles the packets of an Ogg stream of one logical bitstream.
func oggPackets(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var packets [][]byte
	var cur []byte
	for len(b) > 0 {
		if len(b) < 27 || string(b[:4]) != "OggS" {
			t.Fatalf("ogg: no page at %d bytes from the end", len(b))
		}
		nseg := int(b[26])
		if len(b) < 27+nseg {
			t.Fatal("ogg: segment table truncated")
		}
		lacing := b[27 : 27+nseg]
		body := b[27+nseg:]
		for _, l := range lacing {
			if int(l) > len(body) {
				t.Fatal("ogg: segment truncated")
			}
			cur = append(cur, body[:l]...)
			body = body[l:]
			if l < 255 {
				packets = append(packets, cur)
				cur = nil
			}
		}
		b = body
	}
	return packets
}
