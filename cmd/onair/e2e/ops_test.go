package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"onair/scripts/testenv"
)

// /metrics, /healthz and /readyz as an operator and Kubernetes see them. /metrics is on
// a listener of its own, never on the public port, and names rooms by id, not by slug.
func TestHealthAndMetrics(t *testing.T) {
	o, m := startWithMongo(t)
	if code, _ := o.Get(t, "/healthz"); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		code, body := o.Get(t, "/readyz")
		return code == 200, string(body)
	})
	before := scrape(t, o)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	room, key := ann.createRoom("ann-live")
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{})
	defer pub.Kill()
	index := waitIndex(t, o, "ann-live")
	r := readHLS(t, index)
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		v, _, _ := r.snapshot()
		return v >= 90, "waiting for three seconds of video"
	})
	testenv.Publish(t, o.RTMP+"/wrong-key-0123456789abcdef", testenv.PublishOptions{Duration: 10 * time.Second})

	want := []string{
		`onair_live_streams 1`,
		`onair_publishers{audio_codec="aac",video_codec="h264"} 1`,
		`onair_ingest_bitrate_bits_per_second{room="` + room.ID + `"}`,
		`onair_viewers{room="` + room.ID + `"} 1`,
		`onair_hls_requests_total{kind="part"}`,
		`onair_hls_bytes_total{kind="segment"}`,
		`onair_chat_sockets 0`,
		`onair_recording_spool_bytes`,
		`onair_rtmp_connections`,
		`onair_rtmp_refused_total{reason="unknown_key"} 1`,
		`onair_mongo_commands_total{result="ok"}`,
		`onair_mongo_command_duration_seconds_bucket`,
		`onair_sinks_dropped_total 0`,
		`onair_webhook_deliveries_total{result="delivered"}`,
		`process_resident_memory_bytes`,
	}
	var metrics string
	testenv.Eventually(t, 15*time.Second, func() (bool, string) {
		code, body := o.GetMetrics(t)
		if code != 200 {
			return false, "metrics answered " + http.StatusText(code)
		}
		metrics = string(body)
		for _, w := range want {
			if !strings.Contains(metrics, w) {
				return false, "metrics lack " + w
			}
		}
		return true, ""
	})
	if strings.Contains(metrics, "ann-live") {
		t.Error("the metrics name a room by its slug: unlisted rooms' slugs are secret")
	}

	// A whole segment, as a viewer rewinding fetches it (live players read parts).
	playlist, media := mediaPlaylist(t, o, index)
	fetched := false
	for _, m := range uriLine.FindAllSubmatch(media, -1) {
		if u := string(m[1]); hlsSegmentRE.MatchString(stripQuery(u)) {
			if code, body := o.Get(t, path.Dir(playlist)+"/"+u); code != http.StatusOK || len(body) == 0 {
				t.Fatalf("segment %s: %d, %d bytes", u, code, len(body))
			}
			fetched = true
			break
		}
	}
	if !fetched {
		t.Fatalf("no segment in the media playlist:\n%s", media)
	}
	// A chat message: received once, delivered to the one socket, which is counted while
	// it is open.
	ws := ann.chat("ann-live")
	ws.next("history")
	if f := ws.post("hello metrics"); f.Type != "ack" {
		t.Fatalf("chat answered %s", f.Raw)
	}
	// The counters moved by what this test did, not merely exist.
	waitMetrics(t, o, func(m map[string]float64) string {
		for _, c := range []struct {
			series string
			by     float64
		}{
			{`onair_live_streams`, 1},
			{`onair_rtmp_connections`, 1}, // the publisher's, still open
			{`onair_rtmp_refused_total{reason="unknown_key"}`, 1},
			{`onair_hls_requests_total{kind="part"}`, 1},
			{`onair_hls_requests_total{kind="playlist"}`, 1},
			{`onair_hls_requests_total{kind="segment"}`, 1},
			{`onair_hls_bytes_total{kind="segment"}`, 1},
			{`onair_chat_messages_total{event="received"}`, 1},
			{`onair_chat_messages_total{event="delivered"}`, 1},
			{`onair_chat_sockets`, 1},
			{`onair_mongo_commands_total{result="ok"}`, 1},
		} {
			if m[c.series] < before[c.series]+c.by {
				return fmt.Sprintf("%s is %v, was %v before the test acted: want at least %v more", c.series, m[c.series], before[c.series], c.by)
			}
		}
		return ""
	})
	ws.ws.Close()
	waitMetrics(t, o, func(m map[string]float64) string {
		if m["onair_chat_sockets"] != 0 {
			return fmt.Sprintf("%v chat sockets after the only one closed", m["onair_chat_sockets"])
		}
		return ""
	})
	if code, body := o.Get(t, "/metrics"); code != http.StatusNotFound || strings.Contains(string(body), "onair_") {
		t.Errorf("the public port answers /metrics with %d, want 404", code)
	}
	if code, _ := o.Get(t, "/metrics/"); code != http.StatusNotFound {
		t.Errorf("the public port answers /metrics/ with %d, want 404", code)
	}

	// MongoDB gone: not ready (live video is unaffected, tested elsewhere); back: ready.
	m.Kill()
	testenv.Eventually(t, 15*time.Second, func() (bool, string) {
		code, body := o.Get(t, "/readyz")
		return code == 503 && strings.Contains(string(body), "mongodb"), string(body)
	})
	// The public answer names the part, not the error: no address, no driver message.
	if _, body := o.Get(t, "/readyz"); strings.TrimSpace(string(body)) != "not ready: mongodb" {
		t.Fatalf("/readyz tells anonymous clients %q, want only the part that is down", body)
	}
	m.Restart(t)
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		code, body := o.Get(t, "/readyz")
		return code == 200, string(body)
	})
}

// SIGTERM: publishers are let go, the recording is finished, chat sockets are told the
// server is going away, and the process exits within the deadline.
func TestGracefulShutdown(t *testing.T) {
	s3 := testenv.StartS3(t)
	o, m := startWithMongo(t, append(s3Env(s3), "ONAIR_SHUTDOWN_TIMEOUT=20s")...)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-live")
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{})
	index := waitIndex(t, o, "ann-live")
	ws := ann.chat("ann-live")
	ws.next("history")
	// A few seconds of broadcast to record, as the server has them.
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		_, media := mediaPlaylist(t, o, index)
		n := listedSeconds(media)
		return n >= 4, fmt.Sprintf("%.1f s of media listed", n)
	})

	o.Signal(syscall.SIGTERM)
	sent := time.Now()
	select {
	case <-o.Done():
	case <-time.After(25 * time.Second):
		t.Fatal("onair did not exit within the 20 s shutdown deadline")
	}
	t.Logf("exited %s after SIGTERM", time.Since(sent).Round(time.Millisecond))
	select {
	case <-pub.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the publisher's connection outlived the server")
	}
	// The broadcast the shutdown ended is announced in chat before chat closes the socket.
	_ = ws.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ce *websocket.CloseError
	announced := false
	for {
		_, b, err := ws.ws.ReadMessage()
		if err != nil {
			if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
				t.Fatalf("chat socket ended with %v, want close 1001 (going away)", err)
			}
			break
		}
		announced = announced || strings.Contains(string(b), "The stream has ended")
	}
	if !announced {
		t.Error("the chat socket was closed before the end of the broadcast was announced in it")
	}
	for _, line := range []string{"shut down cleanly", "recording complete"} {
		if !o.LogsContain(line) {
			t.Errorf("logs lack %q", line)
		}
	}

	// The next start finds the broadcast ended with its recording, nothing to recover.
	o2 := testenv.StartOnair(t, testenv.OnairOptions{DataDir: o.DataDir, Env: append(s3Env(s3), "ONAIR_MONGO_URI="+m.URI)})
	c := newClient(t, o2.HTTP)
	b := waitReplay(t, c, "ann-live", 10*time.Second)
	if b.Ended == nil || b.Recording == nil || b.Recording.Recovered || b.Recording.DurationMS < 3000 {
		t.Fatalf("broadcast after a graceful shutdown = %+v %+v", b, b.Recording)
	}
}

// scrape reads every sample of /metrics, keyed by series (name and labels as written).
func scrape(t *testing.T, o *testenv.Onair) map[string]float64 {
	t.Helper()
	code, body := o.GetMetrics(t)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitMetrics waits until check, given the current samples, finds nothing wrong ("").
func waitMetrics(t *testing.T, o *testenv.Onair, check func(map[string]float64) string) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, func() (bool, string) {
		why := check(scrape(t, o))
		return why == "", why
	})
}
