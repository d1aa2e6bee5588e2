package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// startNode starts one onair node on a known HTTP port, so that it can advertise itself
// to the other nodes sharing mongo and s3; extra are more ONAIR_* settings.
func startNode(t *testing.T, bin string, m *testenv.MongoDB, s3 *testenv.S3, extra ...string) *testenv.Onair {
	t.Helper()
	port := testenv.FreePort(t)
	env := append([]string{
		"ONAIR_MONGO_URI=" + m.URI,
		fmt.Sprintf("ONAIR_HTTP_ADDR=127.0.0.1:%d", port),
		fmt.Sprintf("ONAIR_NODE_ADVERTISE_URL=http://127.0.0.1:%d", port),
	}, s3Env(s3)...)
	env = append(env, extra...)
	o := testenv.StartOnair(t, testenv.OnairOptions{Binary: bin, Env: env})
	testenv.Eventually(t, 20*time.Second, func() (bool, string) { return o.LogsContain("MongoDB ready"), "indexes" })
	return o
}

// Two nodes share MongoDB and S3: a stream published to A plays through B, chat posted on
// A reaches B, a clip asked of B is cut on A, and when A dies the room shows offline on B
// within 15 s.
func TestTwoNodes(t *testing.T) {
	bin := testenv.OnairBinary(t)
	m, s3 := testenv.StartMongoDB(t), testenv.StartS3(t)
	a := startNode(t, bin, m, s3)
	b := startNode(t, bin, m, s3)

	annA := newClient(t, a.HTTP)
	annA.signUp("ann")
	_, key := annA.createRoom("ann-live")
	testenv.Publish(t, a.RTMP+"/"+key, testenv.PublishOptions{})
	waitIndex(t, a, "ann-live")

	// HLS through the node that does not have the stream.
	indexB := b.HTTP + "/live/ann-live/index.m3u8"
	waitPlaylist(t, indexB, 15*time.Second)
	r := readHLS(t, indexB)
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		v, au, problems := r.snapshot()
		return v >= 60 && au >= 60, fmt.Sprintf("via node B: %d video, %d audio; %v", v, au, problems)
	})

	// Chat across nodes, in order.
	bobB := newClient(t, b.HTTP)
	bobB.signUp("bob")
	wsB := bobB.chat("ann-live")
	wsB.next("history")
	wsA := annA.chat("ann-live")
	wsA.next("history")
	sent := time.Now()
	for i := range 5 {
		if f := wsA.post(fmt.Sprint("from A ", i)); f.Type != "ack" {
			t.Fatalf("post on A: %s", f.Raw)
		}
	}
	for i := range 5 {
		if m := wsB.next("message"); m.Text != fmt.Sprint("from A ", i) {
			t.Fatalf("message %d on B = %q", i, m.Text)
		}
	}
	t.Logf("5 messages crossed nodes in %s", time.Since(sent).Round(time.Millisecond))

	// A live clip asked of B is cut on A, which holds the stream's DVR window.
	live := waitLive(t, annA, "ann-live")
	waitBroadcastAt(t, annA, live.ID, 7*time.Second)
	var clip apiClip
	bobB.must(http.StatusCreated, "POST", "/api/v1/rooms/ann-live/clips", map[string]any{"seconds": 5, "title": "via B"}, &clip)
	if clip.BroadcastID != live.ID || clip.Maker.Handle != "bob" || clip.Title != "via B" || clip.DurationMS < 5000 {
		t.Fatalf("live clip asked of node B: %+v", clip)
	}
	if code, body := b.Get(t, clip.PlaylistURL); code != http.StatusOK || !strings.Contains(string(body), "#EXTINF") {
		t.Fatalf("clip playlist via B: %d %.200s", code, body)
	}

	// Node A dies: B shows the room offline within 15 s.
	a.Signal(syscall.SIGKILL)
	died := time.Now()
	<-a.Done()
	var room apiRoom
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		bobB.must(http.StatusOK, "GET", "/api/v1/rooms/ann-live", nil, &room)
		return !room.Live, "still live on B"
	})
	took := time.Since(died)
	t.Logf("room offline on B %s after node A died", took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Fatalf("room went offline %s after its node died, want within 15 s", took)
	}
	if code, _ := b.Get(t, "/live/ann-live/index.m3u8"); code != http.StatusNotFound {
		t.Fatalf("HLS of the dead node's room via B: %d, want 404", code)
	}
	// The room goes offline inside the pass that ends the broadcast; the pass logs after it.
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(b.Logs(), "ended broadcasts of lost nodes"), "B did not log ending the lost node's broadcast"
	})
}

// One publisher per stream key in the cluster: a second publisher on another node is
// refused while the first sends, and the room stays live; once the first goes quiet (OBS
// after a network drop, reconnecting through the load balancer to another node), the new
// connection takes the stream over on that node, the first node ends its side, and
// exactly one broadcast is live.
func TestOnePublisherAcrossNodes(t *testing.T) {
	bin := testenv.OnairBinary(t)
	m, s3 := testenv.StartMongoDB(t), testenv.StartS3(t)
	a := startNode(t, bin, m, s3)
	b := startNode(t, bin, m, s3)
	ann := newClient(t, a.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-live")
	first := testenv.Publish(t, a.RTMP+"/"+key, testenv.PublishOptions{})
	waitIndex(t, a, "ann-live")

	second := testenv.Publish(t, b.RTMP+"/"+key, testenv.PublishOptions{Duration: 30 * time.Second})
	select {
	case <-second.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("node B accepted a second publisher while node A's was sending")
	}
	if !b.LogsContain("reason=busy") {
		t.Fatal("node B did not log the refusal as busy")
	}
	select {
	case <-first.Done():
		t.Fatalf("the first publisher was disconnected:\n%s", first.Stderr())
	default:
	}
	var room apiRoom
	ann.must(http.StatusOK, "GET", "/api/v1/rooms/ann-live", nil, &room)
	if !room.Live {
		t.Fatal("the room went offline after the refused publisher")
	}

	// A's publisher freezes without closing its connection, as on a network drop; OBS
	// retries through the load balancer, which sends it to node B.
	if err := first.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	defer first.Signal(syscall.SIGCONT)
	var next *testenv.Publisher
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		if next != nil {
			select {
			case <-next.Done():
				next = nil
			default:
				return b.LogsContain("publisher accepted"), "publisher connected to B, not accepted yet"
			}
		}
		next = testenv.Publish(t, b.RTMP+"/"+key, testenv.PublishOptions{})
		return false, "publishing to node B"
	})
	if took := time.Since(frozen); took < 5*time.Second {
		t.Fatalf("node B took over after %s of silence, want at least rtmp.takeover_after (5 s)", took)
	}
	testenv.Eventually(t, 15*time.Second, func() (bool, string) {
		return a.LogsContain("publisher taken over by another node"), "node A has not ended its publisher"
	})

	// Exactly one live broadcast, B's, and the room plays through both nodes.
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		var page struct {
			Broadcasts []apiBroadcast `json:"broadcasts"`
		}
		ann.must(http.StatusOK, "GET", "/api/v1/rooms/ann-live/broadcasts", nil, &page)
		live := 0
		for _, br := range page.Broadcasts {
			if br.Ended == nil {
				live++
			}
		}
		return len(page.Broadcasts) == 2 && live == 1, fmt.Sprintf("%d broadcasts, %d live", len(page.Broadcasts), live)
	})
	ann.must(http.StatusOK, "GET", "/api/v1/rooms/ann-live", nil, &room)
	if !room.Live {
		t.Fatal("the room is offline after the takeover")
	}
	for _, n := range []*testenv.Onair{b, a} {
		r := readHLS(t, n.HTTP+"/live/ann-live/index.m3u8")
		testenv.Eventually(t, 30*time.Second, func() (bool, string) {
			v, au, problems := r.snapshot()
			return v >= 30 && au >= 30, fmt.Sprintf("via %s: %d video, %d audio; %v", n, v, au, problems)
		})
	}
}
