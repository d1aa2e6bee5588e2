package hls

import (
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/flac"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"onair/media/fmp4"
)

// CODECS names VP9 by the profile, level and bit depth of its configuration record, and
// Opus and FLAC by their sample entries.
func TestCodecStrings(t *testing.T) {
	for _, tt := range []struct {
		name  string
		track *fmp4.Track
		want  string
	}{
		{"vp9 profile 0 level 3.1", &fmp4.Track{Config: &mp4codecs.VP9{Profile: 0, BitDepth: 8}, VP9Level: 31}, "vp09.00.31.08"},
		{"vp9 profile 2 10-bit", &fmp4.Track{Config: &mp4codecs.VP9{Profile: 2, BitDepth: 10}, VP9Level: 41}, "vp09.02.41.10"},
		{"vp9 level not given", &fmp4.Track{Config: &mp4codecs.VP9{Profile: 0, BitDepth: 8}}, "vp09.00.10.08"},
		{"opus", &fmp4.Track{Config: &mp4codecs.Opus{ChannelCount: 2}}, "opus"},
		{"flac", &fmp4.Track{Config: &mp4codecs.FLAC{StreamInfo: &flac.StreamInfo{SampleRate: 48000}}}, "fLaC"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := codecString(tt.track); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
