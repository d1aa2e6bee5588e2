package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/scripts/testenv"
)

// recNode is an onair node of a cluster test that can be restarted on its data dir.
type recNode struct {
	*testenv.Onair
	bin     string
	env     []string
	dataDir string
	port    int // kept across restarts, so that clients keep their address
}

// startRecNode starts a node sharing m and s3 on a known HTTP port (so that it advertises
// itself), on dataDir (a fresh one when ""), with extra ONAIR_* settings.
func startRecNode(t *testing.T, bin string, m *testenv.MongoDB, s3 *testenv.S3, dataDir string, extra ...string) *recNode {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	n := &recNode{bin: bin, dataDir: dataDir,
		env: append(append([]string{"ONAIR_MONGO_URI=" + m.URI}, s3Env(s3)...), extra...)}
	n.start(t)
	return n
}

func (n *recNode) start(t *testing.T) {
	t.Helper()
	if n.port == 0 {
		n.port = testenv.FreePort(t)
	}
	env := append([]string{
		fmt.Sprintf("ONAIR_HTTP_ADDR=127.0.0.1:%d", n.port),
		fmt.Sprintf("ONAIR_NODE_ADVERTISE_URL=http://127.0.0.1:%d", n.port),
	}, n.env...)
	n.Onair = testenv.StartOnair(t, testenv.OnairOptions{Binary: n.bin, DataDir: n.dataDir, Env: env})
	o := n.Onair
	testenv.Eventually(t, 20*time.Second, func() (bool, string) { return o.LogsContain("MongoDB ready"), "indexes" })
	// Ready once its start-up work, recovering recordings included, is done.
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		resp, err := http.Get(o.HTTP + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, "readyz: " + resp.Status
	})
}

// recordingOwners lists the recordings in progress in the ledger, with the node that
// began each.
func recordingOwners(t *testing.T, m *testenv.MongoDB) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cur, err := m.Client(t).Database("onair").Collection("recording_uploads").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		Key  string `bson:"_id"`
		Node string `bson:"node"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range docs {
		out[d.Key] = d.Node
	}
	return out
}

// broadcastOn has ann create the room ann-live and publish to it on node o.
func broadcastOn(t *testing.T, o *recNode, opts testenv.PublishOptions) (*client, *testenv.Publisher) {
	t.Helper()
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-live")
	pub := testenv.Publish(t, o.RTMP+"/"+key, opts)
	waitIndex(t, o.Onair, "ann-live")
	return ann, pub
}

// recordedWhole waits for the publisher to finish and checks that the broadcast was
// recorded whole, as long as it was published, without recovery.
func recordedWhole(t *testing.T, pub *testenv.Publisher, origin *recNode, c *client, seconds float64) {
	t.Helper()
	if err := pub.Wait(40 * time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, pub.Stderr())
	}
	rec := waitReplay(t, c, "ann-live", 20*time.Second)
	if rec.Recording == nil || rec.Recording.Recovered {
		t.Fatalf("broadcast = %+v", rec)
	}
	checkReplay(t, origin.Onair, c, rec, seconds, 0)
}

// A node that starts while another records a broadcast leaves that recording alone: it is
// complete, as long as what was published.
func TestRecordingWhileANodeStarts(t *testing.T) {
	bin := testenv.OnairBinary(t)
	m, s3 := testenv.StartMongoDB(t), testenv.StartS3(t)
	a := startRecNode(t, bin, m, s3, "")
	const seconds = 16
	ann, pub := broadcastOn(t, a, testenv.PublishOptions{Duration: seconds * time.Second})
	var owners map[string]string
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		owners = recordingOwners(t, m)
		return len(owners) == 1, "node A does not own its recording yet"
	})

	b := startRecNode(t, bin, m, s3, "")
	if now := recordingOwners(t, m); fmt.Sprint(now) != fmt.Sprint(owners) {
		t.Errorf("recordings after node B started: %v, want node A's %v", now, owners)
	}
	recordedWhole(t, pub, a, ann, seconds)
	for _, line := range []string{"recording adopted", "aborted dangling upload", "deleted dangling object"} {
		if b.LogsContain(line) {
			t.Fatalf("node B: %q", line)
		}
	}
}

// restart stops the node with sig (SIGTERM: a rolling restart; SIGKILL: a crash) and
// starts it again on the same data dir, so under the same node id.
func (n *recNode) restart(t *testing.T, sig syscall.Signal) {
	t.Helper()
	n.Signal(sig)
	select {
	case <-n.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("node did not stop within 30 s of %s", sig)
	}
	n.start(t)
}

// flowing waits until an HLS reader has received frames more than it had.
func flowing(t *testing.T, r *received, via string, more int) {
	t.Helper()
	before, _, _ := r.snapshot()
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		v, _, problems := r.snapshot()
		if len(problems) > 0 {
			t.Fatalf("HLS via %s: %v", via, problems)
		}
		return v >= before+more, fmt.Sprintf("via %s: %d video frames, want %d", via, v, before+more)
	})
}

// A broadcast on node A while every other node restarts in turn (SIGTERM, start), then one
// of them is killed: viewers through A and through the surviving nodes keep watching, and
// the recording is complete.
func TestRecordingThroughRollingRestart(t *testing.T) {
	bin := testenv.OnairBinary(t)
	m, s3 := testenv.StartMongoDB(t), testenv.StartS3(t)
	a := startRecNode(t, bin, m, s3, "")
	b := startRecNode(t, bin, m, s3, "")
	c := startRecNode(t, bin, m, s3, "")
	const seconds = 30
	ann, pub := broadcastOn(t, a, testenv.PublishOptions{Duration: seconds * time.Second})
	viaA := readHLS(t, a.HTTP+"/live/ann-live/index.m3u8")
	flowing(t, viaA, "A", 30)

	var viaC *received
	for _, n := range []*recNode{b, c} {
		n.restart(t, syscall.SIGTERM)
		index := n.HTTP + "/live/ann-live/index.m3u8"
		waitPlaylist(t, index, 15*time.Second)
		r := readHLS(t, index)
		flowing(t, r, "a restarted node", 30)
		flowing(t, viaA, "A", 30)
		viaC = r
	}
	b.Signal(syscall.SIGKILL)
	<-b.Done()
	flowing(t, viaA, "A", 30)
	flowing(t, viaC, "C", 30)

	recordedWhole(t, pub, a, ann, seconds)
}

// ledgerSeconds is how much media the recording ledger in MongoDB indexes as stored.
func ledgerSeconds(t *testing.T, m *testenv.MongoDB) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cur, err := m.Client(t).Database("onair").Collection("recording_fragments").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		Fragments []struct {
			Start    time.Duration `bson:"t"`
			Duration time.Duration `bson:"d"`
		} `bson:"fragments"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	var end time.Duration
	for _, d := range docs {
		for _, f := range d.Fragments {
			end = max(end, f.Start+f.Duration)
		}
	}
	return end.Seconds()
}

// The origin node is killed mid-broadcast. Restarted on its disk, it recovers the
// recording from its spool; lost with its disk (a lost pod), another node completes the
// recording from what reached S3 once the grace period is over.
func TestRecordingOfAKilledOrigin(t *testing.T) {
	bin := testenv.OnairBinary(t)
	adoptAfter := "ONAIR_RECORDINGS_ADOPT_AFTER=12s"
	// start begins a broadcast on a new node A beside a node B, and waits until what the
	// test needs of it has happened.
	start := func(t *testing.T, opts testenv.PublishOptions, ready func(m *testenv.MongoDB, a *recNode) (bool, string)) (m *testenv.MongoDB, a, b *recNode, ann *client) {
		m, s3 := testenv.StartMongoDB(t), testenv.StartS3(t)
		a = startRecNode(t, bin, m, s3, "", adoptAfter)
		b = startRecNode(t, bin, m, s3, "", adoptAfter)
		ann, _ = broadcastOn(t, a, opts)
		testenv.Eventually(t, 30*time.Second, func() (bool, string) { return ready(m, a) })
		return m, a, b, ann
	}
	served := func(a *recNode) float64 {
		_, live := mediaPlaylist(t, a.Onair, a.HTTP+"/live/ann-live/index.m3u8")
		return listedSeconds(live)
	}
	kill := func(n *recNode) {
		n.Signal(syscall.SIGKILL)
		<-n.Done()
	}

	t.Run("restarted on its disk", func(t *testing.T) {
		_, a, b, ann := start(t, testenv.PublishOptions{}, func(_ *testenv.MongoDB, a *recNode) (bool, string) {
			s := served(a)
			return s >= 8, fmt.Sprintf("%.1f s of media served", s)
		})
		had := served(a)
		kill(a)
		a.start(t)
		rec, got := waitRecovered(t, ann, had, 30*time.Second)
		if b.LogsContain("recording adopted") {
			t.Fatal("node B adopted a recording its node came back for")
		}
		checkReplay(t, a.Onair, ann, rec, got, 0)
	})

	// Lost with its disk, the recording is completed from what reached S3: by another node
	// once the grace period is over, or by the node itself when it comes back under its id
	// without its disk (a pod whose volume was lost).
	for _, comesBack := range []bool{false, true} {
		name := map[bool]string{false: "lost with its disk", true: "back under its id without its disk"}[comesBack]
		t.Run(name, func(t *testing.T) {
			// At 8 Mb/s, parts of 8 MiB reach S3 every 8 s or so.
			highBitrate := testenv.PublishOptions{ExtraArgs: []string{"-b:v", "8M", "-minrate", "8M", "-maxrate", "8M",
				"-bufsize", "1M", "-x264-params", "nal-hrd=cbr"}}
			m, a, b, _ := start(t, highBitrate, func(m *testenv.MongoDB, _ *recNode) (bool, string) {
				s := ledgerSeconds(t, m)
				return s > 0, "no part has reached S3 yet"
			})
			id, err := os.ReadFile(filepath.Join(a.dataDir, "node-id"))
			if err != nil {
				t.Fatal(err)
			}
			had, indexed := served(a), ledgerSeconds(t, m)
			kill(a)
			if err := os.RemoveAll(a.dataDir); err != nil {
				t.Fatal(err)
			}
			killed := time.Now()
			adopter := b
			if comesBack {
				a.env = append(a.env, "ONAIR_NODE_ID="+strings.TrimSpace(string(id)))
				a.start(t)
				adopter = a
			}
			rec := waitReplay(t, newClient(t, b.HTTP), "ann-live", 60*time.Second)
			t.Logf("recording completed %s after its node was lost", time.Since(killed).Round(time.Millisecond))
			if rec.Recording == nil || !rec.Recording.Recovered || rec.Ended == nil {
				t.Fatalf("broadcast = %+v", rec)
			}
			got := float64(rec.Recording.DurationMS) / 1000
			t.Logf("the origin served %.2f s; the ledger indexed %.2f s in S3 before the kill; the recording holds %.2f s", had, indexed, got)
			if got < indexed || got > had+0.5 {
				t.Fatalf("the completed recording holds %.2f s: want what reached S3, at least %.2f s and at most %.2f s", got, indexed, had)
			}
			if !adopter.LogsContain("recording of a lost node completed from the store") {
				t.Fatal("the node expected to complete the recording does not say it did")
			}
			if n := replayFrames(t, b.HTTP+rec.ReplayURL); n < int(got*30)-30 {
				t.Fatalf("replay has %d video frames for %.2f s", n, got)
			}
		})
	}
}
