package golive

import (
	"fmt"
	"slices"
)

// Hardware names the machines a fixed configuration can be made for: OBS 32.2 and later
// read no configuration URL for the Custom service, only a configuration pasted into
// "Config Override (JSON)", so the dashboard makes one for the machine the streamer names.
var Hardware = []string{"nvidia", "amd", "apple", "cpu8", "cpu4", "cpu2"}

// Canvases are the output resolutions and frame rates a fixed configuration can be made
// for, as "<height>p<fps>".
var Canvases = map[string]Canvas{
	"1080p60": canvas(1920, 1080, 60),
	"1080p30": canvas(1920, 1080, 30),
	"720p60":  canvas(1280, 720, 60),
	"720p30":  canvas(1280, 720, 30),
}

func canvas(w, h, fps uint32) Canvas {
	return Canvas{Width: w, Height: h, CanvasWidth: w, CanvasHeight: h, Framerate: Framerate{Numerator: fps, Denominator: 1}}
}

// Profile is the request OBS 32 would post from that hardware with that output, for
// Choose. An unknown name is an error naming the ones there are.
func Profile(hardware, output string) (Request, error) {
	c, ok := Canvases[output]
	if !ok {
		return Request{}, fmt.Errorf("output %q: want 1080p60, 1080p30, 720p60 or 720p30", output)
	}
	r := Request{
		Service: "IVS", SchemaVersion: SchemaVersion,
		Client:       Client{Name: "obs-studio", Version: "32.2.0", SupportedCodecs: []string{"h264"}},
		Capabilities: Capabilities{System: System{Name: "Windows", Bits: 64}, CPU: CPU{PhysicalCores: 8, LogicalCores: 16}},
		Preferences:  Preferences{AudioSamplesPerSec: 48000, AudioChannels: 2, Canvases: []Canvas{c}},
	}
	switch hardware {
	case "nvidia":
		r.Capabilities.GPU = []GPU{{Model: "NVIDIA GPU", VendorID: VendorNVIDIA}}
	case "amd":
		r.Capabilities.GPU = []GPU{{Model: "AMD GPU", VendorID: VendorAMD}}
	case "apple":
		r.Capabilities.System = System{Name: "macOS", Bits: 64, ARM: true}
		r.Capabilities.GPU = []GPU{{Model: "Apple silicon", VendorID: VendorApple}}
	case "cpu8", "cpu4", "cpu2":
		n := int(hardware[3] - '0')
		r.Capabilities.CPU = CPU{PhysicalCores: n, LogicalCores: 2 * n}
	default:
		return Request{}, fmt.Errorf("hardware %q: want one of %v", hardware, slices.Clone(Hardware))
	}
	return r, nil
}
