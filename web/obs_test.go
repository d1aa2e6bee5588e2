package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"onair/web/golive"
)

// obsFixture is the body OBS 31.1.2 posts (web/golive/testdata/README.md) with key in it.
func obsFixture(t *testing.T, key string) []byte {
	t.Helper()
	b, err := os.ReadFile("golive/testdata/obs-31.1.2-windows-nvidia.json")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Replace(b, []byte("STREAM_KEY"), []byte(key), 1)
}

func postOBS(t *testing.T, url string, body []byte, userAgent string) (int, golive.Config) {
	t.Helper()
	req, err := http.NewRequest("POST", url+obsConfigPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if userAgent != "" {
		req.Header.Set("User-Agent", userAgent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg golive.Config
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
		t.Fatalf("%d answer: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, cfg
}

func TestOBSConfig(t *testing.T) {
	e := newEventsEnv(t)
	c := e.client()
	c.signUp("obsann")
	var created createRoomResponse
	c.must(201, "POST", "/api/v1/rooms", map[string]any{"slug": "obs-room", "title": "OBS"}, &created)
	key := created.StreamKey

	code, cfg := postOBS(t, e.srv.URL, obsFixture(t, key), "obs-basic 31.1.2")
	if code != 200 || cfg.Status == nil || cfg.Status.Result != golive.StatusSuccess {
		t.Fatalf("right key: %d %+v", code, cfg.Status)
	}
	if len(cfg.EncoderConfigurations) != 3 || cfg.EncoderConfigurations[0].Height != 1080 || cfg.EncoderConfigurations[0].Type != "obs_nvenc_h264_tex" {
		t.Errorf("ladder for an RTX 3070 at 1080p60: %+v", cfg.EncoderConfigurations)
	}
	if len(cfg.IngestEndpoints) == 0 || !strings.HasSuffix(cfg.IngestEndpoints[0].URLTemplate, "/live/{stream_key}") || cfg.Meta.ConfigID == "" {
		t.Errorf("ingest %+v, meta %+v", cfg.IngestEndpoints, cfg.Meta)
	}
	if total := ladderKbps(cfg); total > defaultMaxLadderKbps {
		t.Errorf("total %d kbit/s over the default cap", total)
	}

	// The room's own cap.
	c.must(200, "PATCH", "/api/v1/rooms/obs-room", map[string]any{"max_ladder_kbps": 3000}, nil)
	c.must(400, "PATCH", "/api/v1/rooms/obs-room", map[string]any{"max_ladder_kbps": -1}, nil)
	_, cfg = postOBS(t, e.srv.URL, obsFixture(t, key), "")
	if total := ladderKbps(cfg); total > 3000 || len(cfg.EncoderConfigurations) == 0 {
		t.Errorf("room capped at 3000 kbit/s: %d kbit/s in %d tracks", total, len(cfg.EncoderConfigurations))
	}
	var view roomView
	c.must(200, "GET", "/api/v1/rooms/obs-room", nil, &view)
	if view.MaxLadderKbps != 3000 || view.OBSConfigURL != e.srv.URL+obsConfigPath || view.DefaultMaxLadderKbps != defaultMaxLadderKbps {
		t.Errorf("room view: max %d, url %q, default %d", view.MaxLadderKbps, view.OBSConfigURL, view.DefaultMaxLadderKbps)
	}

	// A fixed configuration for OBS 32.2's Config Override, for the owner only.
	var fixed golive.Config
	c.must(200, "GET", "/api/v1/rooms/obs-room/obs-config?hardware=cpu4&output=720p30", nil, &fixed)
	if len(fixed.EncoderConfigurations) != 2 || fixed.EncoderConfigurations[0].Type != "obs_x264" || ladderKbps(fixed) > 3000 {
		t.Errorf("config override for 4 cores: %+v", fixed.EncoderConfigurations)
	}
	c.must(400, "GET", "/api/v1/rooms/obs-room/obs-config?hardware=voodoo", nil, nil)
	other := e.client()
	other.signUp("obsbob")
	other.must(403, "GET", "/api/v1/rooms/obs-room/obs-config", nil, nil)

	// Refusals: OBS itself gets them as 200 with status error, which it shows.
	refusals := []struct {
		name      string
		body      []byte
		userAgent string
		code      int
		says      string
	}{
		{"wrong key", obsFixture(t, "0123456789abcdef0123456789abcdef"), "", 403, "belongs to no room"},
		{"wrong key, to OBS", obsFixture(t, "0123456789abcdef0123456789abcdef"), "obs-basic 31.1.2", 200, "belongs to no room"},
		{"no key", obsFixture(t, ""), "", 401, "No stream key"},
		{"bad JSON", []byte(`{"authentication": `), "", 400, "Malformed"},
		{"two objects", []byte(`{} {}`), "", 400, "one JSON object"},
		{"oversize", append(append([]byte(`{"client":{"name":"`), bytes.Repeat([]byte("x"), golive.MaxRequestBytes)...), `"}}`...), "", 413, "larger than"},
	}
	for _, tc := range refusals {
		code, cfg := postOBS(t, e.srv.URL, tc.body, tc.userAgent)
		if code != tc.code || cfg.Status == nil || cfg.Status.Result != golive.StatusError || !strings.Contains(cfg.Status.HTMLEnUS, tc.says) || len(cfg.EncoderConfigurations) != 0 {
			t.Errorf("%s: %d %+v, want %d saying %q", tc.name, code, cfg.Status, tc.code, tc.says)
		}
	}

	// Wrong keys are limited per address like failed logins (20 per 15 minutes); past the
	// limit even the right key waits.
	for range 20 {
		postOBS(t, e.srv.URL, obsFixture(t, "ffffffffffffffffffffffffffffffff"), "")
	}
	if code, cfg := postOBS(t, e.srv.URL, obsFixture(t, key), ""); code != 429 || !strings.Contains(cfg.Status.HTMLEnUS, "Too many wrong stream keys") {
		t.Errorf("after 20 wrong keys: %d %+v", code, cfg.Status)
	}
}

func ladderKbps(cfg golive.Config) int {
	n := 0
	for _, e := range cfg.EncoderConfigurations {
		n += e.Settings.Bitrate
	}
	for _, a := range cfg.AudioConfigurations.Live {
		n += a.Settings.Bitrate
	}
	return n
}
