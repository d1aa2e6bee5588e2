package hls

import (
	"fmt"
	"testing"
	"time"
)

// req is a request an Audience is told of.
type req struct {
	stream, file, addr, ua string
	at                     time.Duration // after the test's start
}

func TestAudience(t *testing.T) {
	t0 := time.Now()
	playlist := "video1_stream.m3u8"
	tests := []struct {
		name string
		reqs []req
		at   time.Duration // when to count
		want map[string]int
	}{
		{
			name: "distinct clients: address and user agent",
			reqs: []req{
				{"cam", playlist, "10.0.0.1", "A", 0},
				{"cam", playlist, "10.0.0.1", "A", 0}, // the same client again
				{"cam", playlist, "10.0.0.1", "B", 0}, // another browser behind the same address
				{"cam", playlist, "10.0.0.2", "A", 0},
				{"other", playlist, "10.0.0.1", "A", 0},
			},
			want: map[string]int{"cam": 3, "other": 1},
		},
		{
			name: "only media playlists count",
			reqs: []req{
				{"cam", "index.m3u8", "10.0.0.1", "A", 0},
				{"cam", "video1_part3.mp4", "10.0.0.2", "A", 0},
				{"cam", "video1_seg3.mp4", "10.0.0.3", "A", 0},
				{"cam", "init.mp4", "10.0.0.4", "A", 0},
				{"cam", "audio2_stream.m3u8", "10.0.0.5", "A", 0},
			},
			want: map[string]int{"cam": 1},
		},
		{
			name: "clients that stopped fetching leave after the window",
			reqs: []req{
				{"cam", playlist, "10.0.0.1", "A", 0},
				{"cam", playlist, "10.0.0.2", "A", 0},
				{"cam", playlist, "10.0.0.2", "A", viewerWindow - time.Second},
				{"gone", playlist, "10.0.0.3", "A", 0},
			},
			at:   viewerWindow + time.Second,
			want: map[string]int{"cam": 1},
		},
		{
			name: "a client is counted for the whole window",
			reqs: []req{{"cam", playlist, "10.0.0.1", "A", 0}},
			at:   viewerWindow,
			want: map[string]int{"cam": 1},
		},
		{
			name: "a user agent that left frees its place at the address",
			reqs: append(manyAgents("cam", "10.0.0.1", maxViewersPerAddress, 0),
				req{"cam", playlist, "10.0.0.1", "late", viewerWindow + time.Second}),
			at:   viewerWindow + time.Second,
			want: map[string]int{"cam": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAudience()
			for _, r := range tt.reqs {
				a.Note(r.stream, r.file, r.addr, r.ua, t0.Add(r.at))
			}
			got := a.Counts(t0.Add(tt.at))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("Counts = %v, want %v", got, tt.want)
			}
		})
	}
}

// manyAgents are n requests from one address, each with a user agent of its own.
func manyAgents(stream, addr string, n int, at time.Duration) []req {
	out := make([]req, n)
	for i := range out {
		out[i] = req{stream, "video1_stream.m3u8", addr, fmt.Sprintf("agent/%d", i), at}
	}
	return out
}

// A client rotating its User-Agent counts as at most maxViewersPerAddress viewers.
func TestAudienceBoundsAnAddress(t *testing.T) {
	a := NewAudience()
	now := time.Now()
	for i := range 300 {
		a.Note("cam", "video1_stream.m3u8", "203.0.113.7", fmt.Sprintf("agent/%d", i), now)
	}
	a.Note("cam", "video1_stream.m3u8", "203.0.113.8", "agent/0", now)
	if got, want := a.Counts(now)["cam"], maxViewersPerAddress+1; got != want {
		t.Fatalf("300 user agents from one address and one from another count as %d, want %d", got, want)
	}
	if maxViewersPerAddress < 2 || maxViewersPerAddress > 16 {
		t.Fatalf("maxViewersPerAddress = %d: households behind NAT need a few, more lets one client inflate the count", maxViewersPerAddress)
	}
}

// The tables stay within their bounds, and make room again once clients leave.
func TestAudienceMemoryBounded(t *testing.T) {
	a := NewAudience()
	now := time.Now()
	for i := range maxTrackedAddresses + 10 {
		a.Note("cam", "video1_stream.m3u8", fmt.Sprint(i), "A", now)
	}
	if a.addrs != maxTrackedAddresses || a.Counts(now)["cam"] != maxTrackedAddresses {
		t.Fatalf("%d addresses tracked, want the bound %d", a.addrs, maxTrackedAddresses)
	}
	for i := range maxTrackedStreams + 10 {
		a.Note(fmt.Sprint("s", i), "video1_stream.m3u8", "10.0.0.1", "A", now)
	}
	if len(a.streams) > maxTrackedStreams || a.addrs > maxTrackedAddresses {
		t.Fatalf("%d streams and %d addresses tracked, bounds %d and %d", len(a.streams), a.addrs, maxTrackedStreams, maxTrackedAddresses)
	}
	later := now.Add(viewerWindow + time.Second)
	a.Note("new", "video1_stream.m3u8", "10.0.0.1", "A", later)
	if got := a.Counts(later); len(got) != 1 || got["new"] != 1 || a.addrs != 1 {
		t.Fatalf("after everyone left and one came: %v, %d addresses", got, a.addrs)
	}
}
