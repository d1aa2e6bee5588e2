// Package golive speaks OBS Studio's "multitrack video" configuration protocol (Enhanced
// Broadcasting, the GoLive API that Amazon IVS and Twitch serve): OBS posts what it runs on
// and how much it may send, and the service answers with the renditions OBS encodes and the
// ingest to send them to. The types mirror OBS's own model,
// frontend/utility/models/multitrack-video.hpp (OBS 31 and 32), field for field, so that
// OBS's JSON parser (nlohmann, which refuses missing required fields) reads every answer.
package golive

// SchemaVersion is the schema_version OBS 31 and 32 send and that answers carry back.
const SchemaVersion = "2025-01-25"

// MaxRequestBytes bounds the request body: OBS's is about 2 KiB (one entry per GPU and
// canvas); 64 KiB leaves room for machines with many adapters and nothing for abuse.
const MaxRequestBytes = 64 << 10

// Request is the body OBS posts (GoLiveApi::PostData). Fields onair does not use are kept
// out, and unknown ones are ignored: OBS adds fields between versions.
type Request struct {
	Service       string `json:"service"`
	SchemaVersion string `json:"schema_version"`
	// Authentication is the stream key of OBS's stream settings.
	Authentication string       `json:"authentication"`
	Client         Client       `json:"client"`
	Capabilities   Capabilities `json:"capabilities"`
	Preferences    Preferences  `json:"preferences"`
}

// Client is the software that asks.
type Client struct {
	Name            string   `json:"name"`
	Version         string   `json:"version"`
	SupportedCodecs []string `json:"supported_codecs"`
}

// Capabilities is the streamer's machine.
type Capabilities struct {
	CPU    CPU    `json:"cpu"`
	Memory Memory `json:"memory"`
	System System `json:"system"`
	// GPU lists the graphics adapters (null when OBS could not enumerate them).
	GPU []GPU `json:"gpu"`
}

// CPU is the processor.
type CPU struct {
	PhysicalCores int     `json:"physical_cores"`
	LogicalCores  int     `json:"logical_cores"`
	Speed         *int    `json:"speed"`
	Name          *string `json:"name"`
}

// Memory is the machine's RAM, in bytes.
type Memory struct {
	Total uint64 `json:"total"`
	Free  uint64 `json:"free"`
}

// System is the operating system ("Windows", "macOS", or a Linux distribution's name).
type System struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Bits    int    `json:"bits"`
	ARM     bool   `json:"arm"`
}

// GPU is one graphics adapter: its PCI vendor id tells which hardware encoder it has.
type GPU struct {
	Model                string  `json:"model"`
	VendorID             uint32  `json:"vendor_id"`
	DeviceID             uint32  `json:"device_id"`
	DedicatedVideoMemory uint64  `json:"dedicated_video_memory"`
	SharedSystemMemory   uint64  `json:"shared_system_memory"`
	DriverVersion        *string `json:"driver_version"`
}

// PCI vendor ids of the GPUs whose hardware encoders OBS has.
const (
	VendorNVIDIA = 0x10de
	VendorAMD    = 0x1002
	VendorIntel  = 0x8086
	VendorApple  = 0x106b
)

// Preferences are the streamer's settings: the limits of OBS's "Multitrack Video" box
// (null: Auto) and the canvases it renders.
type Preferences struct {
	// MaximumAggregateBitrate is "Maximum Streaming Bandwidth", in kbit/s.
	MaximumAggregateBitrate *uint64  `json:"maximum_aggregate_bitrate"`
	MaximumVideoTracks      *uint32  `json:"maximum_video_tracks"`
	VODTrackAudio           bool     `json:"vod_track_audio"`
	CompositionGPUIndex     *uint32  `json:"composition_gpu_index"`
	AudioSamplesPerSec      uint32   `json:"audio_samples_per_sec"`
	AudioChannels           uint32   `json:"audio_channels"`
	Canvases                []Canvas `json:"canvases"`
}

// Canvas is one of OBS's video outputs: Width x Height is what it scales to (the Output
// resolution), CanvasWidth x CanvasHeight what it composes (the Base resolution).
type Canvas struct {
	Width        uint32    `json:"width"`
	Height       uint32    `json:"height"`
	CanvasWidth  uint32    `json:"canvas_width"`
	CanvasHeight uint32    `json:"canvas_height"`
	Framerate    Framerate `json:"framerate"`
}

// Framerate is a frame rate as a fraction (OBS's media_frames_per_second).
type Framerate struct {
	Numerator   uint32 `json:"numerator"`
	Denominator uint32 `json:"denominator"`
}

// Config is the answer (GoLiveApi::Config).
type Config struct {
	Meta   Meta    `json:"meta"`
	Status *Status `json:"status,omitempty"`
	// IngestEndpoints is where to publish; OBS takes the first RTMP one (RTMPS when its
	// server is rtmps), unless its Server setting names one (the Custom service).
	IngestEndpoints       []IngestEndpoint `json:"ingest_endpoints"`
	EncoderConfigurations []Encoder        `json:"encoder_configurations"`
	AudioConfigurations   AudioConfigs     `json:"audio_configurations"`
}

// Meta names the answer; OBS logs ConfigID and appends it to the stream key's query as
// clientConfigId.
type Meta struct {
	Service       string `json:"service"`
	SchemaVersion string `json:"schema_version"`
	ConfigID      string `json:"config_id"`
}

// Status results: OBS goes live silently on success, asks the streamer on a warning, and
// shows HTMLEnUS and stays offline on an error.
const (
	StatusSuccess = "success"
	StatusWarning = "warning"
	StatusError   = "error"
)

// Status is what OBS tells the streamer.
type Status struct {
	Result   string `json:"result"`
	HTMLEnUS string `json:"html_en_us,omitempty"`
}

// IngestEndpoint is one place to publish; URLTemplate ends with /{stream_key}.
type IngestEndpoint struct {
	Protocol    string `json:"protocol"`
	URLTemplate string `json:"url_template"`
}

// Encoder is one video track: OBS creates an encoder of Type with Settings, scaled to
// Width x Height at Framerate (a divisor of the canvas's).
type Encoder struct {
	Type        string          `json:"type"`
	Width       uint32          `json:"width"`
	Height      uint32          `json:"height"`
	Framerate   Framerate       `json:"framerate"`
	Settings    EncoderSettings `json:"settings"`
	CanvasIndex uint32          `json:"canvas_index"`
}

// EncoderSettings are the encoder's OBS settings. KeyintSec is the same on every track, so
// that the renditions' key frames, and so their segments, line up.
type EncoderSettings struct {
	RateControl string `json:"rate_control"`
	// Bitrate is in kbit/s.
	Bitrate   int    `json:"bitrate"`
	KeyintSec int    `json:"keyint_sec"`
	Profile   string `json:"profile,omitempty"`
	Preset    string `json:"preset,omitempty"`
	BFrames   *int   `json:"bf,omitempty"`
}

// AudioConfigs are the audio tracks: Live always, VOD when the request asked for a VOD
// track (OBS refuses to start without it then).
type AudioConfigs struct {
	Live []Audio `json:"live"`
	VOD  []Audio `json:"vod,omitempty"`
}

// Audio is one audio track (OBS encodes it with the audio encoder of its settings).
type Audio struct {
	Codec    string        `json:"codec"`
	TrackID  int           `json:"track_id"`
	Channels int           `json:"channels"`
	Settings AudioSettings `json:"settings"`
}

// AudioSettings: Bitrate in kbit/s.
type AudioSettings struct {
	Bitrate int `json:"bitrate"`
}
