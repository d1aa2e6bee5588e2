package record

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"onair/media"
	"onair/media/flv"
)

// fixtureUnits demuxes media/flv's H.264 + AAC fixture (0.2 s, 30 fps, a key frame every
// 4 frames, B-frames) into tracks and access units.
func fixtureUnits(t *testing.T) (media.Tracks, []*media.AccessUnit) {
	t.Helper()
	file, err := os.ReadFile("../flv/testdata/h264_aac.flv")
	if err != nil {
		t.Fatal(err)
	}
	b := file[binary.BigEndian.Uint32(file[5:9]):]
	var d flv.Demuxer
	var aus []*media.AccessUnit
	now := time.Now()
	for len(b) > 4+11 {
		b = b[4:]
		typ := b[0]
		size := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		ts := uint32(b[7])<<24 | uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6])
		body := b[11 : 11+size]
		b = b[11+size:]
		var au *media.AccessUnit
		var err error
		switch typ {
		case 8:
			au, err = d.Audio(ts, body, now)
		case 9:
			au, err = d.Video(ts, body, now)
		default:
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if au != nil {
			aus = append(aus, au)
		}
	}
	return d.Tracks(), aus
}

func TestFragmenterWritesPlayableFragments(t *testing.T) {
	tracks, aus := fixtureUnits(t)
	f, init, err := newFragmenter(fragmenterConfig{MinFragment: 100 * time.Millisecond}, tracks)
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	file.Write(init)
	var frags []*Fragment
	add := func(b []byte, fr *Fragment) {
		if fr == nil {
			return
		}
		fr.Offset = int64(file.Len())
		file.Write(b)
		frags = append(frags, fr)
	}
	videoIn, audioIn := 0, 0
	started := false
	for _, au := range aus {
		if au.Video && au.Key {
			started = true
		}
		if started {
			if au.Video {
				videoIn++
			} else {
				audioIn++
			}
		}
		b, fr, err := f.write(au)
		if err != nil {
			t.Fatal(err)
		}
		add(b, fr)
	}
	b, fr, err := f.finish()
	if err != nil {
		t.Fatal(err)
	}
	add(b, fr)

	if len(frags) < 2 {
		t.Fatalf("got %d fragments from 0.2 s with 0.1 s minimum and key frames every 4 frames", len(frags))
	}
	var initBox fmp4.Init
	if err := initBox.Unmarshal(bytes.NewReader(init)); err != nil {
		t.Fatalf("init does not parse: %v", err)
	}
	if len(initBox.Tracks) != 2 {
		t.Fatalf("init has %d tracks", len(initBox.Tracks))
	}
	videoOut, audioOut := 0, 0
	var end time.Duration
	for i, fr := range frags {
		if fr.Start != end {
			t.Errorf("fragment %d starts at %s, previous ended at %s", i, fr.Start, end)
		}
		end = fr.Start + fr.Duration
		if !fr.Key {
			t.Errorf("fragment %d does not start with a key frame", i)
		}
		var parts fmp4.Parts
		if err := parts.Unmarshal(file.Bytes()[fr.Offset : fr.Offset+fr.Size]); err != nil {
			t.Fatalf("fragment %d does not parse: %v", i, err)
		}
		for _, p := range parts {
			for _, pt := range p.Tracks {
				for j, s := range pt.Samples {
					if pt.ID == 1 {
						videoOut++
						if j == 0 && s.IsNonSyncSample {
							t.Errorf("fragment %d starts with a non-key video sample", i)
						}
					} else {
						audioOut++
					}
					if s.Duration == 0 {
						t.Errorf("fragment %d track %d sample %d has no duration", i, pt.ID, j)
					}
				}
			}
		}
	}
	if videoOut != videoIn || audioOut != audioIn {
		t.Fatalf("recorded %d video and %d audio samples, fed %d and %d", videoOut, audioOut, videoIn, audioIn)
	}
	if want := 200 * time.Millisecond; end < want-70*time.Millisecond || end > want+70*time.Millisecond {
		t.Fatalf("recording lasts %s, want about %s", end, want)
	}
}

func TestFragmenterCutsLongGOPs(t *testing.T) {
	tracks := media.Tracks{Audio: nil, Video: nil}
	tr, aus := fixtureUnits(t)
	tracks.Video = tr.Video
	f, _, err := newFragmenter(fragmenterConfig{MinFragment: 50 * time.Millisecond, MaxFragment: 50 * time.Millisecond}, tracks)
	if err != nil {
		t.Fatal(err)
	}
	var frags []*Fragment
	for _, au := range aus {
		_, fr, err := f.write(au)
		if err != nil {
			t.Fatal(err)
		}
		if fr != nil {
			frags = append(frags, fr)
		}
	}
	nonKey := 0
	for _, fr := range frags {
		if fr.Duration > 70*time.Millisecond {
			t.Errorf("fragment of %s exceeds the 50 ms maximum by more than a frame", fr.Duration)
		}
		if !fr.Key {
			nonKey++
		}
	}
	if len(frags) < 2 || nonKey == 0 {
		t.Fatalf("got %d fragments (%d without key frame), want cuts inside GOPs", len(frags), nonKey)
	}
}

func TestNewFragmenterNeedsATrack(t *testing.T) {
	if _, _, err := newFragmenter(fragmenterConfig{}, media.Tracks{}); err == nil {
		t.Fatal("no error for a stream without tracks")
	}
}
