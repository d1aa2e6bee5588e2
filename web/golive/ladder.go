package golive

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// KeyintSec is every track's key frame interval: one second, as onair asks of every
// publisher, and the same on all tracks so that their segments line up.
const KeyintSec = 1

// AudioKbps is the bitrate of each audio track onair asks for (AAC stereo).
const AudioKbps = 160

// MinVideoKbps is the least video budget a ladder is made for: below it no track is
// worth watching, and OBS is told to raise its maximum instead.
const MinVideoKbps = 300

// ErrBudgetTooLow is what Choose returns when the bitrate cap leaves less than
// MinVideoKbps for video.
var ErrBudgetTooLow = errors.New("maximum bitrate too low for a video track")

// encoder is a family of OBS video encoders, chosen by the streamer's hardware.
type encoder int

const (
	x264 encoder = iota
	nvenc
	amf
	videoToolbox
)

func (e encoder) String() string {
	return [...]string{"x264", "nvenc", "amf", "videotoolbox"}[e]
}

// rung is a track of a ladder before it meets the canvas: a height and the frame rate it
// aims at.
type rung struct {
	height uint32
	fps    uint32
}

// ladder is the tracks a machine gets: the first n of rungs that fit OBS's canvas, best
// first (the rungs below n fill in when the canvas is smaller than the top ones).
type ladder struct {
	rungs []rung
	n     int
}

// A hardware encoder encodes several tracks for little CPU; x264 costs a core or more
// per track, so CPU-only machines get fewer and smaller ones.
var (
	hardwareLadder = ladder{[]rung{{1080, 60}, {720, 30}, {480, 30}, {360, 30}}, 3}
	bigCPULadder   = ladder{[]rung{{720, 30}, {480, 30}, {360, 30}, {240, 30}}, 3}
	midCPULadder   = ladder{[]rung{{720, 30}, {360, 30}, {240, 30}}, 2}
	smallCPULadder = ladder{[]rung{{720, 30}, {360, 30}}, 1}
)

// Choice is a ladder: the video tracks, best first, and the audio tracks.
type Choice struct {
	Encoder string // the encoder family chosen, for logs
	Video   []Encoder
	Audio   AudioConfigs
}

// TotalKbps is what the ladder sends, audio included.
func (c Choice) TotalKbps() int {
	n := 0
	for _, v := range c.Video {
		n += v.Settings.Bitrate
	}
	for _, a := range append(append([]Audio(nil), c.Audio.Live...), c.Audio.VOD...) {
		n += a.Settings.Bitrate
	}
	return n
}

// Choose picks the ladder for the machine and settings of req within capKbps (the room's
// maximum, kbit/s, audio included; OBS's own maximum_aggregate_bitrate when lower). The
// top track never exceeds OBS's output resolution or frame rate; when the cap cannot carry
// every track at half its nominal bitrate the best tracks are dropped first, since a
// narrow uplink is better used by the smaller renditions.
func Choose(req *Request, capKbps int) (Choice, error) {
	if m := req.Preferences.MaximumAggregateBitrate; m != nil && *m > 0 && *m < uint64(capKbps) {
		capKbps = int(*m)
	}
	enc := pickEncoder(req)
	l := ladderFor(enc, req.Capabilities.CPU)
	n := l.n
	if m := req.Preferences.MaximumVideoTracks; m != nil && *m > 0 && int(*m) < n {
		n = int(*m)
	}
	audio := AudioConfigs{Live: []Audio{stereo(0)}}
	if req.Preferences.VODTrackAudio {
		audio.VOD = []Audio{stereo(1)}
	}
	budget := capKbps - AudioKbps*(len(audio.Live)+len(audio.VOD))
	if budget < MinVideoKbps {
		return Choice{}, fmt.Errorf("%w: %d kbit/s leaves %d for video, want at least %d", ErrBudgetTooLow, capKbps, budget, MinVideoKbps)
	}
	tracks := fitCanvas(l.rungs, canvasOf(req))
	tracks = tracks[:min(n, len(tracks))]
	for len(tracks) > 1 && sumKbps(tracks)/2 > budget {
		tracks = tracks[1:]
	}
	scaleInto(tracks, budget)
	c := Choice{Encoder: enc.String(), Audio: audio}
	for _, t := range tracks {
		c.Video = append(c.Video, encoderConfig(enc, req.Client.Version, t))
	}
	return c, nil
}

func stereo(track int) Audio {
	return Audio{Codec: "ffmpeg_aac", TrackID: track, Channels: 2, Settings: AudioSettings{Bitrate: AudioKbps}}
}

// pickEncoder chooses by the GPU OBS composes on (a texture encoder must sit on it) and
// the operating system, since each vendor's encoder exists in OBS on some systems only.
func pickEncoder(req *Request) encoder {
	gpus := req.Capabilities.GPU
	if len(gpus) == 0 {
		return x264
	}
	gpu := gpus[0]
	if i := req.Preferences.CompositionGPUIndex; i != nil && int(*i) < len(gpus) {
		gpu = gpus[*i]
	}
	sys := strings.ToLower(req.Capabilities.System.Name)
	windows, mac := sys == "windows", sys == "macos"
	switch {
	case gpu.VendorID == VendorNVIDIA && !mac:
		return nvenc
	case gpu.VendorID == VendorAMD && windows:
		return amf
	case gpu.VendorID == VendorApple && mac && req.Capabilities.System.ARM:
		return videoToolbox
	}
	return x264
}

func ladderFor(enc encoder, cpu CPU) ladder {
	if enc != x264 {
		return hardwareLadder
	}
	cores := cpu.PhysicalCores
	if cores <= 0 {
		cores = cpu.LogicalCores / 2
	}
	switch {
	case cores >= 8:
		return bigCPULadder
	case cores >= 4:
		return midCPULadder
	}
	return smallCPULadder
}

// canvasOf is OBS's main output (canvas 0): its scaled size and frame rate. An OBS that
// sends no canvas is taken as 1080p30.
func canvasOf(req *Request) Canvas {
	if len(req.Preferences.Canvases) > 0 {
		c := req.Preferences.Canvases[0]
		if c.Width > 0 && c.Height > 0 && c.Framerate.Numerator > 0 && c.Framerate.Denominator > 0 {
			return c
		}
	}
	return Canvas{Width: 1920, Height: 1080, Framerate: Framerate{Numerator: 30, Denominator: 1}}
}

// track is a rung fitted to the canvas.
type track struct {
	width, height uint32
	fps           Framerate
	kbps          int
}

// fitCanvas keeps the rungs no taller than the canvas (one at the canvas's own height when
// all are), sizes them to its aspect ratio, and gives each a frame rate that divides the
// canvas's (OBS drops frames by an integer divisor).
func fitCanvas(rungs []rung, c Canvas) []track {
	var out []track
	for _, r := range rungs {
		h := min(r.height, c.Height)
		if len(out) > 0 && out[len(out)-1].height <= h {
			continue
		}
		w := even(uint64(h) * uint64(c.Width) / uint64(c.Height))
		fps := divide(c.Framerate, r.fps)
		out = append(out, track{width: w, height: even(uint64(h)), fps: fps, kbps: nominalKbps(h, fps)})
	}
	return out
}

func even(n uint64) uint32 { return uint32(n &^ 1) }

// divide gives the canvas's frame rate divided by the least integer that brings it to
// at most target.
func divide(canvas Framerate, target uint32) Framerate {
	d := uint64(1)
	for uint64(canvas.Numerator) > uint64(target)*uint64(canvas.Denominator)*d {
		d++
	}
	num, den := uint64(canvas.Numerator), uint64(canvas.Denominator)*d
	g := gcd(num, den)
	return Framerate{Numerator: uint32(num / g), Denominator: uint32(den / g)}
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// nominalKbps is an H.264 track's bitrate at that height: roughly what Twitch and IVS
// recommend, a third more above 30 fps.
func nominalKbps(height uint32, fps Framerate) int {
	var k int
	switch {
	case height >= 1080:
		k = 4500
	case height >= 720:
		k = 2500
	case height >= 480:
		k = 1200
	case height >= 360:
		k = 700
	default:
		k = 400
	}
	if fps.Numerator > 35*fps.Denominator {
		k = k * 4 / 3
	}
	return k
}

func sumKbps(ts []track) int {
	n := 0
	for _, t := range ts {
		n += t.kbps
	}
	return n
}

// scaleInto lowers every track's bitrate in proportion until they fit budget.
func scaleInto(ts []track, budget int) {
	sum := sumKbps(ts)
	if sum <= budget {
		return
	}
	for i := range ts {
		ts[i].kbps = ts[i].kbps * budget / sum
	}
}

func encoderConfig(enc encoder, obsVersion string, t track) Encoder {
	e := Encoder{Width: t.width, Height: t.height, Framerate: t.fps,
		Settings: EncoderSettings{RateControl: "CBR", Bitrate: t.kbps, KeyintSec: KeyintSec, Profile: "high"}}
	switch enc {
	case nvenc:
		// OBS 31 replaced the NVENC encoders; "jim_nvenc" stays there only as a deprecated
		// alias, and is the only one of OBS 30.
		e.Type, e.Settings.Preset = "obs_nvenc_h264_tex", "p5"
		if major(obsVersion) == 30 {
			e.Type = "jim_nvenc"
		}
		bf := 2
		e.Settings.BFrames = &bf
	case amf:
		e.Type, e.Settings.Preset = "h264_texture_amf", "quality"
	case videoToolbox:
		e.Type = "com.apple.videotoolbox.videoencoder.ave.avc"
	default:
		e.Type, e.Settings.Preset, e.Settings.Profile = "obs_x264", "veryfast", "main"
	}
	return e
}

// major is the major version of an OBS version string ("31.1.2", "30.2.0-beta1"), 0 when
// it has none.
func major(v string) int {
	head, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(head)
	if err != nil {
		return 0
	}
	return n
}
