package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"onair/rooms/webhook"
	"onair/scripts/testenv"
)

type apiClip struct {
	ID          string `json:"id"`
	BroadcastID string `json:"broadcast_id"`
	Title       string `json:"title"`
	StartMS     int64  `json:"start_ms"`
	DurationMS  int64  `json:"duration_ms"`
	Maker       struct {
		Handle string `json:"handle"`
	} `json:"maker"`
	PageURL     string `json:"page_url"`
	PlaylistURL string `json:"playlist_url"`
	CanDelete   bool   `json:"can_delete"`
}

// TestClips: a viewer clips the last 10 s of a live stream about 30 s in, and 5 s of its
// replay; each clip is one MP4 object holding exactly the frames ffmpeg sent in that
// window, cut on key frames; out-of-range lengths are refused; the maker and the owner may
// delete a clip, another viewer may not; clip.created reaches the room's webhook.
func TestClips(t *testing.T) {
	var secret string
	var secretMu sync.Mutex
	recv := newHookReceiver(t, func() string {
		secretMu.Lock()
		defer secretMu.Unlock()
		return secret
	})
	o, _ := startWithMongo(t, "ONAIR_WEBHOOKS_ALLOW_PRIVATE=true", "ONAIR_WEBHOOKS_BACKOFF_MIN=200ms")
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	bob := newClient(t, o.HTTP)
	bob.signUp("bob")
	carl := newClient(t, o.HTTP)
	carl.signUp("carl")
	_, key := ann.createRoom("ann-clips")
	var hook struct {
		Webhook webhook.Webhook `json:"webhook"`
		Secret  string          `json:"secret"`
	}
	ann.must(201, "POST", "/api/v1/rooms/ann-clips/webhooks", map[string]any{"url": recv.URL + "/hook", "events": []string{"clip.created"}}, &hook)
	secretMu.Lock()
	secret = hook.Secret
	secretMu.Unlock()

	// Not live yet: nothing to clip.
	if code, _ := bob.do("POST", "/api/v1/rooms/ann-clips/clips", map[string]any{"seconds": 10}, nil); code != 409 {
		t.Fatalf("clip of an offline room: %d, want 409", code)
	}
	sent := filepath.Join(t.TempDir(), "sent.flv")
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{Duration: 36 * time.Second, Copy: sent})

	// About 30 s in.
	room := waitLive(t, ann, "ann-clips")
	waitBroadcastAt(t, ann, room.ID, 28*time.Second)
	for _, bad := range []int{0, 4, 61} {
		var e struct {
			Error struct{ Field, Message string }
		}
		if code, _ := bob.do("POST", "/api/v1/rooms/ann-clips/clips", map[string]any{"seconds": bad}, &e); code != 400 || e.Error.Field != "seconds" {
			t.Fatalf("clip of %d s: %d %+v, want 400 on seconds", bad, code, e)
		}
	}
	anon := newClient(t, o.HTTP)
	if code, _ := anon.do("POST", "/api/v1/rooms/ann-clips/clips", map[string]any{"seconds": 10}, nil); code != 401 {
		t.Fatalf("anonymous clip: %d, want 401", code)
	}
	var live apiClip
	bob.must(201, "POST", "/api/v1/rooms/ann-clips/clips", map[string]any{"seconds": 10, "title": "bob's goal"}, &live)
	if live.Title != "bob's goal" || live.Maker.Handle != "bob" || live.BroadcastID != room.ID || !live.CanDelete ||
		live.DurationMS < 10000 || live.DurationMS > 11100 || live.StartMS < 15000 {
		t.Fatalf("live clip: %+v", live)
	}
	if err := pub.Wait(60 * time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, pub.Stderr())
	}
	sentFrames := videoPackets(t, sent)
	checkClipFrames(t, o, live, sentFrames)
	if code, page := o.Get(t, live.PageURL); code != 200 || !strings.Contains(string(page), "bob&#39;s goal") || !strings.Contains(string(page), live.PlaylistURL) {
		t.Fatalf("clip page: %d", code)
	}

	// From the replay: the 5 s before 20 s.
	b := waitReplay(t, ann, "ann-clips", 30*time.Second)
	var fromReplay apiClip
	carl.must(201, "POST", "/api/v1/broadcasts/"+b.ID+"/clips", map[string]any{"at_ms": 20000, "seconds": 5}, &fromReplay)
	if fromReplay.StartMS < 14000 || fromReplay.StartMS > 15000 || fromReplay.DurationMS < 5000 || fromReplay.DurationMS > 6100 {
		t.Fatalf("replay clip: %+v", fromReplay)
	}
	checkClipFrames(t, o, fromReplay, sentFrames)
	if code, _ := carl.do("POST", "/api/v1/broadcasts/"+b.ID+"/clips", map[string]any{"at_ms": 20000, "seconds": 70}, nil); code != 400 {
		t.Fatalf("replay clip of 70 s: %d, want 400", code)
	}

	// The room lists both, newest first; who may delete what.
	var list struct {
		Clips []apiClip `json:"clips"`
	}
	carl.must(200, "GET", "/api/v1/rooms/ann-clips/clips", nil, &list)
	if len(list.Clips) != 2 || list.Clips[0].ID != fromReplay.ID || list.Clips[1].ID != live.ID || !list.Clips[0].CanDelete || list.Clips[1].CanDelete {
		t.Fatalf("clips as carl sees them: %+v", list.Clips)
	}
	if code, _ := carl.do("DELETE", "/api/v1/clips/"+live.ID, nil, nil); code != 403 {
		t.Fatalf("carl deletes bob's clip: %d, want 403", code)
	}
	objectURL := clipObjectURL(t, o, live)
	ann.must(204, "DELETE", "/api/v1/clips/"+live.ID, nil, nil) // the room's owner
	if code, _ := bob.do("GET", "/api/v1/clips/"+live.ID, nil, nil); code != 404 {
		t.Fatalf("a deleted clip: %d", code)
	}
	if resp, err := http.Get(objectURL); err != nil || resp.StatusCode != 404 {
		t.Fatalf("a deleted clip's object: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	carl.must(204, "DELETE", "/api/v1/clips/"+fromReplay.ID, nil, nil) // its maker

	// clip.created, twice, with the clips' ids.
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		var log webhook.DeliveryPage
		ann.must(200, "GET", "/api/v1/rooms/ann-clips/webhooks/"+hook.Webhook.ID+"/deliveries", nil, &log)
		delivered := 0
		for _, d := range log.Deliveries {
			if d.Type == webhook.ClipCreated && d.Status == webhook.StatusDelivered {
				delivered++
			}
		}
		return delivered == 2, fmt.Sprintf("%d clip.created delivered", delivered)
	})
	var ids []string
	for _, r := range recv.requests() {
		var ev struct {
			Type string           `json:"type"`
			Data webhook.ClipData `json:"data"`
		}
		if err := json.Unmarshal(r.body, &ev); err != nil || ev.Type != webhook.ClipCreated || r.signature != nil {
			t.Fatalf("webhook request: %s (%v, %v)", r.body, err, r.signature)
		}
		ids = append(ids, ev.Data.Clip.ID+"/"+ev.Data.Clip.CreatedBy.Handle)
	}
	if want := live.ID + "/bob," + fromReplay.ID + "/carl"; strings.Join(ids, ",") != want {
		t.Fatalf("clip.created for %v, want %s", ids, want)
	}

	// A private room's clips are as safe as its replays: for those it admits, and their
	// media for those holding its playback cookie.
	var own apiClip
	ann.must(201, "POST", "/api/v1/broadcasts/"+b.ID+"/clips", map[string]any{"at_ms": 30000, "seconds": 5}, &own)
	var priv struct {
		PlaybackID string `json:"playback_id"`
	}
	ann.must(200, "PATCH", "/api/v1/rooms/ann-clips", map[string]any{"visibility": "private"}, &priv)
	if code, _ := carl.do("GET", "/api/v1/clips/"+own.ID, nil, nil); code != 403 {
		t.Fatalf("a stranger reads a private room's clip: %d, want 403", code)
	}
	if code, _ := anon.do("GET", "/api/v1/clips/"+own.ID, nil, nil); code != 401 {
		t.Fatalf("anonymous reads a private room's clip: %d, want 401", code)
	}
	if code, _ := carl.do("POST", "/api/v1/broadcasts/"+b.ID+"/clips", map[string]any{"at_ms": 30000, "seconds": 5}, nil); code != 403 {
		t.Fatalf("a stranger clips a private room's replay: %d, want 403", code)
	}
	if code, page := o.Get(t, own.PageURL); code != 401 || strings.Contains(string(page), "data-src") {
		t.Fatalf("anonymous opens a private room's clip page: %d", code)
	}
	ann.must(200, "GET", "/api/v1/clips/"+own.ID, nil, &own)
	if !strings.HasPrefix(own.PlaylistURL, "/vod/"+priv.PlaybackID+"/clips/") {
		t.Fatalf("a private room's clip plays from %s", own.PlaylistURL)
	}
	get := func(url string) (int, []byte) {
		resp, err := ann.http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if code, _ := get(o.HTTP + own.PlaylistURL); code != 403 {
		t.Fatalf("a private clip's playlist without the playback cookie: %d, want 403", code)
	}
	ann.must(200, "POST", "/api/v1/rooms/"+priv.PlaybackID+"/playback", nil, nil)
	code, pl := get(o.HTTP + own.PlaylistURL)
	m := mapRangeRE.FindSubmatch(pl)
	if code != 200 || m == nil {
		t.Fatalf("a private clip's playlist with the playback cookie: %d\n%s", code, pl)
	}
	url := string(m[1])
	if strings.HasPrefix(url, "/") {
		url = o.HTTP + url
	}
	if code, body := get(url); code != 200 || int64(len(body)) < 1000 || string(body[4:8]) != "ftyp" {
		t.Fatalf("a private clip's object: %d, %d bytes", code, len(body))
	}
}

// clipObjectURL is the URL of the clip's object, as its playlist gives it.
func clipObjectURL(t *testing.T, o *testenv.Onair, c apiClip) string {
	t.Helper()
	code, pl := o.Get(t, c.PlaylistURL)
	m := mapRangeRE.FindSubmatch(pl)
	if code != 200 || m == nil {
		t.Fatalf("clip playlist: %d\n%s", code, pl)
	}
	u := string(m[1])
	if strings.HasPrefix(u, "/") {
		u = o.HTTP + u
	}
	return u
}

// checkClipFrames downloads the clip's object and checks it: it lasts as long as the clip
// says, starts with a key frame, and its video frames are the ones sent from its start
// on, byte for byte.
func checkClipFrames(t *testing.T, o *testenv.Onair, c apiClip, sent []string) {
	t.Helper()
	resp, err := http.Get(clipObjectURL(t, o, c))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	file := filepath.Join(t.TempDir(), c.ID+".mp4")
	f, err := os.Create(file)
	if err == nil {
		_, err = io.Copy(f, resp.Body)
		f.Close()
	}
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("clip object: %d %v", resp.StatusCode, err)
	}
	// Its media times are the broadcast's: it runs from its start to its end.
	got := strings.Split(ffprobe(t, "-show_entries", "format=start_time,duration", "-of", "csv=p=0", file), ",")
	start, err1 := strconv.ParseFloat(got[0], 64)
	end, err2 := strconv.ParseFloat(got[len(got)-1], 64)
	want := float64(c.StartMS+c.DurationMS) / 1000
	if err1 != nil || err2 != nil || start < float64(c.StartMS)/1000-0.1 || start > float64(c.StartMS)/1000+0.1 || end < want-0.2 || end > want+0.2 {
		t.Fatalf("clip object runs %v s, the clip says from %d ms for %d ms", got, c.StartMS, c.DurationMS)
	}
	frames := videoPackets(t, file)
	// 30 fps from the broadcast's first frame: the clip's first frame is the one sent at
	// its start.
	first := int(math.Round(float64(c.StartMS) * 30 / 1000))
	if len(frames) == 0 || first+len(frames) > len(sent) {
		t.Fatalf("clip of %d frames from frame %d, %d sent", len(frames), first, len(sent))
	}
	for i, fr := range frames {
		if fr != sent[first+i] {
			t.Fatalf("clip frame %d is not frame %d sent (%s, sent %s)", i, first+i, fr, sent[first+i])
		}
	}
	if n := float64(len(frames)) / 30; n < float64(c.DurationMS)/1000-0.1 {
		t.Fatalf("clip holds %.2f s of frames, says %d ms", n, c.DurationMS)
	}
	t.Logf("clip %s: %s s from %.2f s, its %d frames those sent", c.ID, got, float64(c.StartMS)/1000, len(frames))
}
