package oldkit

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

// scanFMP4 returns the video access units of an fMP4 part or segment (moof + mdat
// pairs). Every track is read as H.264: the probe only fetches video playlists.
func scanFMP4(body []byte) ([]frameInfo, error) {
	var parts fmp4.Parts
	if err := parts.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("fmp4: %w", err)
	}
	var out []frameInfo
	for _, part := range parts {
		for _, track := range part.Tracks {
			for _, sample := range track.Samples {
				var au h264.AVCC
				if err := au.Unmarshal(sample.Payload); err != nil {
					return nil, fmt.Errorf("fmp4: track %d sample: %w", track.ID, err)
				}
				out = append(out, inspectAU(au))
			}
		}
	}
	return out, nil
}

// scanTS returns the H.264 access units of an MPEG-TS segment.
func ScanTS(body []byte) ([]frameInfo, error) {
	r := &mpegts.Reader{R: bytes.NewReader(body)}
	if err := r.Initialize(); err != nil {
		return nil, fmt.Errorf("mpegts: %w", err)
	}
	var out []frameInfo
	video := false
	for _, track := range r.Tracks() {
		if _, ok := track.Codec.(*tscodecs.H264); ok {
			video = true
			r.OnDataH264(track, func(_, _ int64, au [][]byte) error {
				out = append(out, inspectAU(au))
				return nil
			})
		}
	}
	if !video {
		return nil, errors.New("mpegts: no H.264 track")
	}
	for {
		err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("mpegts: %w", err)
		}
	}
}
