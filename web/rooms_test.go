package web

import (
	"testing"

	"onair/rooms"
)

func TestStartURL(t *testing.T) {
	public := rooms.Room{Slug: "talks", Visibility: rooms.Public, Live: true, Recording: true}
	private := rooms.Room{Slug: "secret", PlaybackID: "p1d", Visibility: rooms.Private, Live: true, Recording: true}
	notRecorded, offline := public, public
	notRecorded.Recording = false
	offline.Live = false
	tests := []struct {
		name      string
		room      rooms.Room
		fromStart bool
		want      string
	}{
		{"live and recorded", public, true, "/live/talks/start.m3u8"},
		{"private: by its playback id", private, true, "/live/p1d/start.m3u8"},
		{"not recorded", notRecorded, true, ""},
		{"offline", offline, true, ""},
		{"no recorder", public, false, ""},
	}
	for _, tt := range tests {
		s := &Server{cfg: Config{FromStart: tt.fromStart}}
		if got := s.startURL(tt.room); got != tt.want {
			t.Errorf("%s: startURL = %q, want %q", tt.name, got, tt.want)
		}
	}
}
