package hls

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Many viewers of one stream ask for the same playlist or part at the same moment (every
// LL-HLS player blocks on the same next part). responses makes one muxer request per
// URL and shares the answer: gohlslib renders the playlist anew for every request, and a
// playlist with a two-minute DVR window is not small.
type responses struct {
	mu      sync.Mutex
	entries map[string]*sharedResponse
}

// sharedResponse is one muxer answer; ready is closed once buf is complete.
type sharedResponse struct {
	ready  chan struct{}
	buf    *bufferedResponse
	expiry time.Time // set when ready
}

// How long an answer is shared after it is complete. A blocking request's answer is valid
// for as long as its URL (it names the part it waited for); a plain playlist changes with
// every part, so it is shared only briefly; parts never change.
const (
	shareBlocking = time.Second
	sharePlaylist = 100 * time.Millisecond
	sharePart     = 2 * time.Second
)

// get returns the shared answer for key and whether the caller must produce it.
func (c *responses) get(key string, now time.Time) (*sharedResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		select {
		case <-e.ready:
			if now.Before(e.expiry) {
				return e, false
			}
		default:
			return e, false // in flight: wait for it
		}
	}
	if len(c.entries) >= 512 {
		c.sweepLocked(now)
	}
	e := &sharedResponse{ready: make(chan struct{}), buf: newBufferedResponse()}
	c.entries[key] = e
	return e, true
}

func (c *responses) done(e *sharedResponse, ttl time.Duration) {
	c.mu.Lock()
	e.expiry = time.Now().Add(ttl)
	c.mu.Unlock()
	close(e.ready)
}

func (c *responses) sweepLocked(now time.Time) {
	for k, e := range c.entries {
		select {
		case <-e.ready:
			if !now.Before(e.expiry) {
				delete(c.entries, k)
			}
		default:
		}
	}
}

func shareFor(kind fileKind, blocking bool) time.Duration {
	switch {
	case kind == kindPart:
		return sharePart
	case blocking:
		return shareBlocking
	default:
		return sharePlaylist
	}
}

// openFinishedSegment opens a segment the muxer has finished writing to disk, so that it
// is sent with sendfile and a Content-Length rather than copied through the muxer. The
// muxer creates segment N+1's file only after closing segment N's, which is how a
// finished one is recognised; anything else is left to the muxer.
func (sess *session) openFinishedSegment(file string) (*os.File, bool) {
	file = filepath.Base(file)
	ext := filepath.Ext(file)
	i := strings.LastIndex(file, "_seg")
	if i < 0 {
		return nil, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(file[i+len("_seg"):], ext), 10, 64)
	if err != nil {
		return nil, false
	}
	next := file[:i] + "_seg" + strconv.FormatUint(n+1, 10) + ext
	if _, err := os.Stat(filepath.Join(sess.dir, next)); err != nil {
		return nil, false
	}
	f, err := os.Open(filepath.Join(sess.dir, file))
	if err != nil {
		return nil, false
	}
	return f, true
}

// serveSegmentFile sends a finished segment from disk.
func serveSegmentFile(w http.ResponseWriter, r *http.Request, f *os.File, file string) {
	defer f.Close()
	ct := "video/mp4"
	if strings.HasSuffix(file, ".ts") {
		ct = "video/mp2t"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", cacheControl(kindSegment, false, true))
	http.ServeContent(w, r, "", time.Time{}, f)
}
