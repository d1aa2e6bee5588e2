package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// obsRequest posts body to onair's OBS multitrack video configuration URL as OBS 31.1.2
// does (its User-Agent when obs is set) and decodes the answer.
func obsRequest(t *testing.T, base string, body []byte, obs bool) (int, obsAnswer) {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/api/v1/obs/config", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if obs {
		req.Header.Set("User-Agent", "obs-basic 31.1.2")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a obsAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%d %s: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, a
}

// obsAnswer is what OBS reads of the answer (frontend/utility/models/multitrack-video.hpp).
type obsAnswer struct {
	Meta struct {
		Service, SchemaVersion, ConfigID string
	} `json:"meta"`
	Status *struct {
		Result   string `json:"result"`
		HTMLEnUS string `json:"html_en_us"`
	} `json:"status"`
	IngestEndpoints []struct {
		Protocol    string `json:"protocol"`
		URLTemplate string `json:"url_template"`
	} `json:"ingest_endpoints"`
	EncoderConfigurations []struct {
		Type      string `json:"type"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		Framerate struct {
			Numerator, Denominator int
		} `json:"framerate"`
		Settings struct {
			Bitrate   int    `json:"bitrate"`
			KeyintSec int    `json:"keyint_sec"`
			RateCtl   string `json:"rate_control"`
		} `json:"settings"`
	} `json:"encoder_configurations"`
	AudioConfigurations struct {
		Live []struct {
			Settings struct {
				Bitrate int `json:"bitrate"`
			} `json:"settings"`
		} `json:"live"`
	} `json:"audio_configurations"`
}

// The configuration endpoint answers OBS's own request body (OBS 31.1.2 on Windows with an
// NVIDIA GPU, web/golive/testdata) with a ladder for the room of the stream key, within the
// server's rtmp.max_ladder_kbps, and refuses a wrong key, a missing one and a body too big.
func TestOBSMultitrackConfig(t *testing.T) {
	o, _ := startWithMongo(t, "ONAIR_RTMP_MAX_LADDER_KBPS=5000")
	c := newClient(t, o.HTTP)
	c.signUp("obsstreamer")
	_, key := c.createRoom("multitrack")
	fixture, err := os.ReadFile("../../../web/golive/testdata/obs-31.1.2-windows-nvidia.json")
	if err != nil {
		t.Fatal(err)
	}
	withKey := func(k string) []byte { return bytes.Replace(fixture, []byte("STREAM_KEY"), []byte(k), 1) }

	code, a := obsRequest(t, o.HTTP, withKey(key), true)
	if code != 200 || a.Status == nil || a.Status.Result != "success" {
		t.Fatalf("right key: %d %+v", code, a.Status)
	}
	if len(a.EncoderConfigurations) < 2 {
		t.Fatalf("an RTX 3070 gets %d tracks: %+v", len(a.EncoderConfigurations), a.EncoderConfigurations)
	}
	total := 0
	for _, e := range a.EncoderConfigurations {
		if e.Settings.KeyintSec != 1 || e.Settings.Bitrate <= 0 || e.Type != "obs_nvenc_h264_tex" || e.Height > 1080 {
			t.Errorf("track %+v: want NVENC, 1 s key frames, at most 1080p", e)
		}
		total += e.Settings.Bitrate
	}
	for _, au := range a.AudioConfigurations.Live {
		total += au.Settings.Bitrate
	}
	if total > 5000 || len(a.AudioConfigurations.Live) != 1 {
		t.Errorf("ladder totals %d kbit/s with %d audio tracks, cap 5000", total, len(a.AudioConfigurations.Live))
	}
	if len(a.IngestEndpoints) == 0 || a.IngestEndpoints[0].Protocol != "RTMP" || a.IngestEndpoints[0].URLTemplate != o.RTMP+"/{stream_key}" {
		t.Errorf("ingest %+v, want %s/{stream_key}", a.IngestEndpoints, o.RTMP)
	}

	wrong := withKey("0123456789abcdef0123456789abcdef")
	if code, a := obsRequest(t, o.HTTP, wrong, false); code != 403 || a.Status == nil || a.Status.Result != "error" || len(a.EncoderConfigurations) != 0 {
		t.Errorf("wrong key: %d %+v", code, a.Status)
	}
	// OBS shows an answer's message only with a 2xx status.
	if code, a := obsRequest(t, o.HTTP, wrong, true); code != 200 || a.Status == nil || a.Status.Result != "error" || !strings.Contains(a.Status.HTMLEnUS, "stream key") {
		t.Errorf("wrong key, to OBS: %d %+v", code, a.Status)
	}
	if code, _ := obsRequest(t, o.HTTP, withKey(""), false); code != 401 {
		t.Errorf("no key: %d, want 401", code)
	}
	big := append(append([]byte(`{"authentication":"`+key+`","client":{"version":"`), bytes.Repeat([]byte("9"), 70<<10)...), `"}}`...)
	if code, _ := obsRequest(t, o.HTTP, big, false); code != 413 {
		t.Errorf("70 KiB body: %d, want 413", code)
	}
	if code, _ := obsRequest(t, o.HTTP, []byte(`{"authentication":`), false); code != 400 {
		t.Errorf("bad JSON: %d, want 400", code)
	}
	if o.LogsContain(key) {
		t.Error("the stream key is in onair's logs")
	}
}
