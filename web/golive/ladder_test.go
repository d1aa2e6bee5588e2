package golive

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
)

// fixture is the body OBS 31.1.2 posts from Windows with an NVIDIA GPU (testdata/README.md).
func fixture(t *testing.T) Request {
	t.Helper()
	b, err := os.ReadFile("testdata/obs-31.1.2-windows-nvidia.json")
	if err != nil {
		t.Fatal(err)
	}
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return r
}

func u64(n uint64) *uint64 { return &n }
func u32(n uint32) *uint32 { return &n }

type shape struct {
	height uint32
	fps    string
}

func TestChooseLadder(t *testing.T) {
	cpuOnly := func(physical int) func(*Request) {
		return func(r *Request) {
			r.Capabilities.GPU = []GPU{{Model: "Intel(R) UHD Graphics 770", VendorID: VendorIntel}}
			r.Capabilities.CPU.PhysicalCores, r.Capabilities.CPU.LogicalCores = physical, 2*physical
		}
	}
	canvas := func(w, h, num, den uint32) func(*Request) {
		return func(r *Request) {
			r.Preferences.Canvases = []Canvas{{Width: w, Height: h, CanvasWidth: w, CanvasHeight: h, Framerate: Framerate{num, den}}}
		}
	}
	cases := []struct {
		name    string
		edit    []func(*Request)
		capKbps int
		encoder string
		want    []shape
		total   int // exact total when > 0
	}{
		{name: "nvidia, room cap above the ladder", capKbps: 20000, encoder: "obs_nvenc_h264_tex",
			want: []shape{{1080, "60/1"}, {720, "30/1"}, {480, "30/1"}}, total: 6000 + 2500 + 1200 + 160},
		{name: "nvidia, room cap scales the bitrates", capKbps: 6000, encoder: "obs_nvenc_h264_tex",
			want: []shape{{1080, "60/1"}, {720, "30/1"}, {480, "30/1"}}},
		{name: "nvidia, OBS's maximum bandwidth below the room's", capKbps: 20000,
			edit:    []func(*Request){func(r *Request) { r.Preferences.MaximumAggregateBitrate = u64(3000) }},
			encoder: "obs_nvenc_h264_tex", want: []shape{{720, "30/1"}, {480, "30/1"}}},
		{name: "nvidia, narrow cap drops the best tracks", capKbps: 1200, encoder: "obs_nvenc_h264_tex",
			want: []shape{{480, "30/1"}}},
		{name: "nvidia, two tracks at most", capKbps: 20000,
			edit:    []func(*Request){func(r *Request) { r.Preferences.MaximumVideoTracks = u32(2) }},
			encoder: "obs_nvenc_h264_tex", want: []shape{{1080, "60/1"}, {720, "30/1"}}},
		{name: "nvidia, OBS 30 names NVENC jim_nvenc", capKbps: 20000,
			edit:    []func(*Request){func(r *Request) { r.Client.Version = "30.2.3" }},
			encoder: "jim_nvenc", want: []shape{{1080, "60/1"}, {720, "30/1"}, {480, "30/1"}}},
		{name: "nvidia, 720p59.94 canvas", capKbps: 20000, edit: []func(*Request){canvas(1280, 720, 60000, 1001)},
			encoder: "obs_nvenc_h264_tex", want: []shape{{720, "60000/1001"}, {480, "30000/1001"}, {360, "30000/1001"}}},
		{name: "nvidia, 50 fps canvas", capKbps: 20000, edit: []func(*Request){canvas(1920, 1080, 50, 1)},
			encoder: "obs_nvenc_h264_tex", want: []shape{{1080, "50/1"}, {720, "25/1"}, {480, "25/1"}}},
		{name: "nvidia, 30 fps canvas", capKbps: 20000, edit: []func(*Request){canvas(1920, 1080, 30, 1)},
			encoder: "obs_nvenc_h264_tex", want: []shape{{1080, "30/1"}, {720, "30/1"}, {480, "30/1"}}},
		{name: "nvidia on macOS has no NVENC", capKbps: 20000,
			edit:    []func(*Request){func(r *Request) { r.Capabilities.System.Name = "macOS" }},
			encoder: "obs_x264", want: []shape{{720, "30/1"}, {480, "30/1"}, {360, "30/1"}}},
		{name: "AMD on Windows", capKbps: 20000,
			edit:    []func(*Request){func(r *Request) { r.Capabilities.GPU[0].VendorID = VendorAMD }},
			encoder: "h264_texture_amf", want: []shape{{1080, "60/1"}, {720, "30/1"}, {480, "30/1"}}},
		{name: "Apple silicon", capKbps: 20000, edit: []func(*Request){func(r *Request) {
			r.Capabilities.System.Name, r.Capabilities.System.ARM = "macOS", true
			r.Capabilities.GPU = []GPU{{Model: "Apple M2", VendorID: VendorApple}}
		}}, encoder: "com.apple.videotoolbox.videoencoder.ave.avc", want: []shape{{1080, "60/1"}, {720, "30/1"}, {480, "30/1"}}},
		{name: "no GPU listed, 8 cores", capKbps: 20000,
			edit:    []func(*Request){func(r *Request) { r.Capabilities.GPU = nil }},
			encoder: "obs_x264", want: []shape{{720, "30/1"}, {480, "30/1"}, {360, "30/1"}}},
		{name: "CPU only, 4 cores", capKbps: 20000, edit: []func(*Request){cpuOnly(4)},
			encoder: "obs_x264", want: []shape{{720, "30/1"}, {360, "30/1"}}},
		{name: "CPU only, 2 cores", capKbps: 20000, edit: []func(*Request){cpuOnly(2)},
			encoder: "obs_x264", want: []shape{{720, "30/1"}}},
		{name: "CPU only, 4 cores, one track asked", capKbps: 20000,
			edit:    []func(*Request){cpuOnly(4), func(r *Request) { r.Preferences.MaximumVideoTracks = u32(1) }},
			encoder: "obs_x264", want: []shape{{720, "30/1"}}},
		{name: "composition on the second GPU", capKbps: 20000, edit: []func(*Request){func(r *Request) {
			r.Capabilities.GPU = append([]GPU{{Model: "NVIDIA GeForce RTX 3070", VendorID: VendorNVIDIA}}, GPU{Model: "AMD Radeon", VendorID: VendorAMD})
			r.Preferences.CompositionGPUIndex = u32(1)
		}}, encoder: "h264_texture_amf", want: []shape{{1080, "60/1"}, {720, "30/1"}, {480, "30/1"}}},
		{name: "VOD audio track", capKbps: 20000,
			edit:    []func(*Request){func(r *Request) { r.Preferences.VODTrackAudio = true }},
			encoder: "obs_nvenc_h264_tex", want: []shape{{1080, "60/1"}, {720, "30/1"}, {480, "30/1"}}, total: 6000 + 2500 + 1200 + 320},
		{name: "small canvas: the lower rungs fill in", capKbps: 20000, edit: []func(*Request){canvas(854, 480, 30, 1)},
			encoder: "obs_nvenc_h264_tex", want: []shape{{480, "30/1"}, {360, "30/1"}}},
		{name: "no canvas sent", capKbps: 20000,
			edit:    []func(*Request){func(r *Request) { r.Preferences.Canvases = nil }},
			encoder: "obs_nvenc_h264_tex", want: []shape{{1080, "30/1"}, {720, "30/1"}, {480, "30/1"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := fixture(t)
			for _, e := range tc.edit {
				e(&req)
			}
			c, err := Choose(&req, tc.capKbps)
			if err != nil {
				t.Fatal(err)
			}
			var got []shape
			for _, v := range c.Video {
				got = append(got, shape{v.Height, fmt.Sprintf("%d/%d", v.Framerate.Numerator, v.Framerate.Denominator)})
				if v.Type != tc.encoder {
					t.Errorf("%dp: encoder %q, want %q", v.Height, v.Type, tc.encoder)
				}
				if v.Settings.KeyintSec != 1 {
					t.Errorf("%dp: keyint_sec %d, want 1", v.Height, v.Settings.KeyintSec)
				}
				if v.Width%2 != 0 || v.Height%2 != 0 || v.Width*9 < v.Height*16-32 || v.Width*9 > v.Height*16+32 {
					t.Errorf("%dx%d: not an even 16:9 size", v.Width, v.Height)
				}
				if v.Settings.Bitrate <= 0 || v.Settings.RateControl != "CBR" {
					t.Errorf("%dp: settings %+v", v.Height, v.Settings)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("tracks %v, want %v", got, tc.want)
			}
			limit := tc.capKbps
			if m := req.Preferences.MaximumAggregateBitrate; m != nil {
				limit = min(limit, int(*m))
			}
			if c.TotalKbps() > limit {
				t.Errorf("total %d kbit/s over the cap %d", c.TotalKbps(), limit)
			}
			if tc.total > 0 && c.TotalKbps() != tc.total {
				t.Errorf("total %d kbit/s, want %d", c.TotalKbps(), tc.total)
			}
			for i := 1; i < len(c.Video); i++ {
				if c.Video[i].Settings.Bitrate >= c.Video[i-1].Settings.Bitrate {
					t.Errorf("bitrates not descending: %d then %d", c.Video[i-1].Settings.Bitrate, c.Video[i].Settings.Bitrate)
				}
			}
		})
	}
}

func TestChooseRefusesATinyCap(t *testing.T) {
	req := fixture(t)
	req.Preferences.MaximumAggregateBitrate = u64(400)
	if _, err := Choose(&req, 20000); !errors.Is(err, ErrBudgetTooLow) {
		t.Fatalf("err %v, want ErrBudgetTooLow", err)
	}
}

func TestProfiles(t *testing.T) {
	want := map[string]string{
		"nvidia": "obs_nvenc_h264_tex", "amd": "h264_texture_amf", "apple": "com.apple.videotoolbox.videoencoder.ave.avc",
		"cpu8": "obs_x264", "cpu4": "obs_x264", "cpu2": "obs_x264",
	}
	tracks := map[string]int{"nvidia": 3, "amd": 3, "apple": 3, "cpu8": 3, "cpu4": 2, "cpu2": 1}
	for _, hw := range Hardware {
		for out := range Canvases {
			req, err := Profile(hw, out)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Choose(&req, 10000)
			if err != nil {
				t.Fatal(err)
			}
			top := Canvases[out].Height
			if hw[:3] == "cpu" {
				top = min(top, 720) // x264 costs a core or more per track
			}
			if c.Video[0].Type != want[hw] || len(c.Video) != tracks[hw] || c.Video[0].Height != top {
				t.Errorf("%s %s: %d tracks, first %s %dp", hw, out, len(c.Video), c.Video[0].Type, c.Video[0].Height)
			}
		}
	}
	if _, err := Profile("voodoo", "1080p60"); err == nil {
		t.Error("unknown hardware accepted")
	}
	if _, err := Profile("nvidia", "4k"); err == nil {
		t.Error("unknown output accepted")
	}
}
