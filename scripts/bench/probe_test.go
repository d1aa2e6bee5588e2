package main

import (
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

func TestFrameLatencies(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	stamp := func(ms int) frameInfo { return frameInfo{stamp: at(ms).UnixNano(), hasStamp: true} }
	fetches := []fetchResult{
		{Arrived: at(900), Frames: []frameInfo{stamp(100), stamp(133)}},
		{Arrived: at(500), Frames: []frameInfo{stamp(100), {idr: true}}}, // the earlier arrival counts
		{Failed: at(400), Err: errors.New("404")},
		{Failed: at(3000), Err: errors.New("404 after the end")},
		{Arrived: at(2000), Frames: []frameInfo{stamp(1900)}}, // outside the window
	}
	got := frameLatencies(fetches, at(0), at(1000))
	want := []time.Duration{400 * time.Millisecond, 767 * time.Millisecond}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("frameLatencies = %v, want %v", got, want)
	}
	if first, ok := firstIDRArrival(fetches); !ok || !first.Equal(at(500)) {
		t.Errorf("firstIDRArrival = %v, %v", first, ok)
	}
	if n, err := fetchErrors(fetches, at(2500)); n != 1 || err == nil || err.Error() != "404" {
		t.Errorf("fetchErrors = %d, %v", n, err)
	}
}

func TestListPartsAndNext(t *testing.T) {
	pl := &playlist.Media{
		MediaSequence: 7,
		Segments: []*playlist.MediaSegment{
			{URI: "gap.mp4", Gap: true},
			{URI: "seg8.mp4", Parts: []*playlist.MediaPart{{URI: "p0.mp4", Independent: true}, {URI: "p1.mp4"}}},
		},
		Parts: []*playlist.MediaPart{{URI: "p2.mp4", Independent: true}},
	}
	parts := listParts(pl)
	if len(parts) != 3 || parts[1].msn != 8 || !parts[1].last || parts[2].msn != 9 || parts[2].index != 0 {
		t.Fatalf("listParts = %+v", parts)
	}
	if msn, part := parts[1].next(); msn != 9 || part != 0 {
		t.Errorf("after a segment's final part: %d/%d, want 9/0", msn, part)
	}
	if msn, part := parts[2].next(); msn != 9 || part != 1 {
		t.Errorf("after a part in progress: %d/%d, want 9/1", msn, part)
	}
	if !parts[2].after(parts[1]) || parts[0].after(parts[1]) {
		t.Error("after")
	}
}
