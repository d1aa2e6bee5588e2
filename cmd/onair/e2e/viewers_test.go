package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"

	"onair/scripts/testenv"
)

// userAgent makes an HLS client send ua, as a distinct browser would.
func userAgent(ua string) func(*gohlslib.Client) {
	return func(c *gohlslib.Client) {
		c.OnRequest = func(r *http.Request) { r.Header.Set("User-Agent", ua) }
	}
}

// Viewers are counted once, on the node they watch through: with the stream live on A,
// one player on A, two through B and three through C (distinct user agents, one address)
// are six viewers at the room on every node, in chat on C, and as the broadcast's peak
// and total. The nodes that fetch from A are not viewers of A.
func TestViewersAcrossNodes(t *testing.T) {
	bin := testenv.OnairBinary(t)
	m, s3 := testenv.StartMongoDB(t), testenv.StartS3(t)
	nodes := []*testenv.Onair{startNode(t, bin, m, s3), startNode(t, bin, m, s3), startNode(t, bin, m, s3)}
	a, c := nodes[0], nodes[2]

	ann := newClient(t, a.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-live")
	pub := testenv.Publish(t, a.RTMP+"/"+key, testenv.PublishOptions{})
	waitIndex(t, a, "ann-live")
	chatC := newClient(t, c.HTTP).chat("ann-live") // an anonymous reader on C
	chatC.next("history")

	const want = 6
	var players []*received
	for i, n := range []int{1, 2, 3} { // players through A, B and C
		index := nodes[i].HTTP + "/live/ann-live/index.m3u8"
		waitPlaylist(t, index, 15*time.Second)
		for j := range n {
			players = append(players, readHLS(t, index, userAgent(fmt.Sprintf("player/%c-%d", 'A'+i, j))))
		}
	}
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		for i, p := range players {
			if v, _, problems := p.snapshot(); v < 30 {
				return false, fmt.Sprintf("player %d: %d video frames; %v", i, v, problems)
			}
		}
		return true, ""
	})

	for i, o := range nodes {
		cl := newClient(t, o.HTTP)
		testenv.Eventually(t, 20*time.Second, func() (bool, string) {
			var room apiRoom
			cl.must(http.StatusOK, "GET", "/api/v1/rooms/ann-live", nil, &room)
			return room.Viewers == want, fmt.Sprintf("node %c: %d viewers at the room", 'A'+i, room.Viewers)
		})
	}
	// Chat on C, where the stream is not live, shows the cluster's count. Frames come on
	// changes only, in order: read until it arrives.
	for f := chatC.next("viewers"); f.Count != want; f = chatC.next("viewers") {
		t.Logf("chat on C: %d watching", f.Count)
	}

	if err := pub.Stop(); err != nil {
		t.Logf("publisher: %v", err)
	}
	type broadcast struct {
		Ended        *time.Time `json:"ended"`
		PeakViewers  int        `json:"peak_viewers"`
		TotalViewers int        `json:"total_viewers"`
	}
	var b broadcast
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		var page struct {
			Broadcasts []broadcast `json:"broadcasts"`
		}
		ann.must(http.StatusOK, "GET", "/api/v1/rooms/ann-live/broadcasts", nil, &page)
		if len(page.Broadcasts) != 1 {
			return false, fmt.Sprintf("%d broadcasts", len(page.Broadcasts))
		}
		b = page.Broadcasts[0]
		return b.Ended != nil, "broadcast not ended yet"
	})
	if b.PeakViewers != want || b.TotalViewers != want {
		t.Fatalf("broadcast: peak %d, total %d viewers; want %d and %d", b.PeakViewers, b.TotalViewers, want, want)
	}
}
