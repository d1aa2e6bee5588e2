package media

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestAlignmentJudge(t *testing.T) {
	mainKeys := []time.Duration{0, ms(1000), ms(2000), ms(3000), ms(4000), ms(5000)}
	cases := []struct {
		name    string
		pending []time.Duration
		mainEnd time.Duration
		wantErr bool
		judged  int
		left    int
		done    bool
	}{
		{"same key frames", []time.Duration{ms(1000), ms(2000)}, ms(5000), false, 2, 0, false},
		{"within the tolerance", []time.Duration{ms(1019), ms(1981)}, ms(5000), false, 2, 0, false},
		{"five judged: aligned", []time.Duration{ms(1000), ms(2000), ms(3000), ms(4000), ms(5000)}, ms(5100), false, 5, 0, true},
		{"past the tolerance", []time.Duration{ms(1000), ms(2021)}, ms(5000), true, 0, 0, false},
		{"another GOP length", []time.Duration{ms(0), ms(1500)}, ms(5000), true, 0, 0, false},
		{"the main is not there yet", []time.Duration{ms(4000), ms(5100)}, ms(4500), false, 1, 1, false},
		{"nothing to judge before the main gets there", []time.Duration{ms(6000)}, ms(5000), false, 0, 1, false},
		{"no main key frames", []time.Duration{ms(100)}, ms(5000), true, 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys := mainKeys
			if c.name == "no main key frames" {
				keys = nil
			}
			a := &alignment{pending: append([]time.Duration(nil), c.pending...)}
			err := a.judge(keys, c.mainEnd)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error: %v", err, c.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrNotAligned) || !strings.Contains(err.Error(), "keyframe interval") {
					t.Errorf("the reason does not say what to do: %v", err)
				}
				return
			}
			if a.judged != c.judged || len(a.pending) != c.left || a.done != c.done {
				t.Errorf("judged %d, left %d, done %v; want %d, %d, %v", a.judged, len(a.pending), a.done, c.judged, c.left, c.done)
			}
		})
	}
}

func TestKeyRing(t *testing.T) {
	var k keyRing
	for i := range keyRingSize + 3 {
		k.add(ms(i))
	}
	l := k.list()
	if len(l) != keyRingSize || l[0] != ms(3) || l[len(l)-1] != ms(keyRingSize+2) {
		t.Fatalf("ring holds %d from %s to %s", len(l), l[0], l[len(l)-1])
	}
}

func TestValidRendition(t *testing.T) {
	for name, ok := range map[string]bool{"360p": true, "low_1": true, "a-b": true, "": false, "UP": false,
		"a/b": false, "0123456789abcdefg": false, "é": false} {
		if err := ValidRendition(name); (err == nil) != ok {
			t.Errorf("ValidRendition(%q) = %v", name, err)
		}
	}
}

var videoTracks = Tracks{Video: &VideoTrack{Codec: CodecH264, Width: 640, Height: 360}}

func key(dts time.Duration) *AccessUnit {
	return &AccessUnit{Video: true, Key: true, DTS: dts, PTS: dts, Payload: [][]byte{{1}}, Received: time.Now()}
}

// A rendition joins a live main on this node, is refused without one, is checked for key
// frames where the main's are, and ends with its main.
func TestRenditions(t *testing.T) {
	h := NewHub(HubConfig{TakeoverAfter: time.Hour, IdleTimeout: time.Hour})
	ctx := context.Background()

	ctxShort, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := h.Publish(ctxShort, Route{Name: "cam", Rendition: "360p"}, "r"); !errors.Is(err, ErrNoMain) {
		t.Fatalf("a rendition without its main: %v", err)
	}
	if r, ok := h.LastRefusal("cam"); !ok || !strings.Contains(r.Reason, "main rendition") {
		t.Fatalf("refusal not kept for the dashboard: %+v", r)
	}
	if _, err := h.Publish(ctx, Route{Name: "cam", Rendition: "Bad!"}, "r"); err == nil {
		t.Fatal("a bad rendition name was accepted")
	}

	main, err := h.Publish(ctx, Route{Name: "cam"}, "m")
	if err != nil {
		t.Fatal(err)
	}
	main.SetClockBase(ms(1000))
	mst, err := main.Start(videoTracks)
	if err != nil {
		t.Fatal(err)
	}
	good, err := h.Publish(ctx, Route{Name: "cam", Rendition: "360p"}, "g")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := h.Publish(ctx, Route{Name: "cam", Rendition: "180p"}, "b")
	if err != nil {
		t.Fatal(err)
	}
	// good's encoder clock started 200 ms after the main's: its DTS 800 ms is the main's
	// 1000 ms.
	good.SetClockBase(ms(1200))
	bad.SetClockBase(ms(1000))
	gst, err := good.Start(videoTracks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Start(videoTracks); err != nil {
		t.Fatal(err)
	}
	if h.Stream("cam") != mst || len(h.Renditions("cam")) != 2 || len(h.Streams()) != 1 {
		t.Fatalf("the hub lists %d renditions, %d streams", len(h.Renditions("cam")), len(h.Streams()))
	}
	for i := range 8 {
		main.Write(key(ms(1000 * i)))
		if i > 0 {
			good.Write(key(ms(1000*i - 200)))
		}
		bad.Write(key(ms(1500 * i)))
	}
	main.Write(key(ms(8000)))
	if !gst.Aligned() {
		t.Error("the aligned rendition was not found aligned")
	}
	select {
	case <-bad.Done():
		if !errors.Is(bad.Err(), ErrNotAligned) {
			t.Errorf("the misaligned rendition ended with %v", bad.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the misaligned rendition was not refused")
	}
	if r, _ := h.LastRefusal("cam"); !strings.Contains(r.Reason, `rendition "180p" refused`) {
		t.Errorf("refusal %q", r.Reason)
	}

	// Another encoder's output, started later: its clock is not the main's.
	late, err := h.Publish(ctx, Route{Name: "cam", Rendition: "late"}, "l")
	if err != nil {
		t.Fatal(err)
	}
	late.SetClockBase(ms(1000))
	if _, err := late.Start(videoTracks); err != nil {
		t.Fatal(err)
	}
	late.Write(key(0))
	<-late.Done()
	if err := late.Err(); !errors.Is(err, ErrNotAligned) || !strings.Contains(err.Error(), "timestamps are -8s from the main's") {
		t.Errorf("a rendition on another clock ended with %v", err)
	}

	// At most MaxRenditions besides the main.
	for i := range MaxRenditions {
		if _, err := h.Publish(ctx, Route{Name: "cam", Rendition: fmt.Sprintf("r%d", i)}, "x"); i < MaxRenditions-1 && err != nil {
			t.Fatal(err)
		} else if i == MaxRenditions-1 && (err == nil || !strings.Contains(err.Error(), "the most it may have")) {
			t.Fatalf("rendition %d beside %d others: %v", i+2, i+1, err)
		}
	}

	main.Close()
	select {
	case <-good.Done():
		if !errors.Is(good.Err(), ErrMainEnded) {
			t.Errorf("the rendition ended with %v", good.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the rendition outlived its main")
	}
	if len(h.Renditions("cam")) != 0 {
		t.Error("renditions left after the main ended")
	}
}
