package rtmp

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"onair/media"
	"onair/media/flv"
)

// trackRendition is a further video track of an Enhanced RTMP multitrack publish (OBS's
// multitrack video): a rendition of the stream, with a publisher of its own in the hub
// beside the connection's main one, as a simulcast output's would be.
type trackRendition struct {
	name   string
	pub    *media.Publisher
	stream *media.Stream
	failed bool // refused or could not start: its units are dropped
}

// trackUnits hands the further tracks' access units to their renditions and returns track
// 0's, the main rendition's (nil if the message had none).
func (h *handler) trackUnits(units []flv.TrackUnit) *media.AccessUnit {
	var main *media.AccessUnit
	for _, u := range units {
		if u.Track == 0 {
			main = u.AU
			continue
		}
		h.writeTrack(u.Track, u.AU)
	}
	return main
}

// writeTrack writes an access unit of further track id, publishing its rendition once the
// main rendition has started and starting it at its first key frame.
func (h *handler) writeTrack(id uint8, au *media.AccessUnit) {
	if h.stream == nil {
		return // renditions join a started main; they start at a key frame anyway
	}
	tr := h.tracks[id]
	if tr == nil {
		tr = h.publishTrack(id)
	}
	if tr.failed {
		return
	}
	if tr.stream == nil {
		if !au.Key {
			return
		}
		tr.pub.SetClockBase(h.demux.Base())
		s, err := tr.pub.Start(media.Tracks{Video: h.demux.TrackVideo(id)})
		if err != nil {
			h.log.Warn("multitrack rendition not started", "track", id, "rendition", tr.name, "err", err)
			tr.failed = true
			tr.pub.Close()
			return
		}
		tr.stream = s
	}
	tr.pub.Write(au)
}

// publishTrack publishes the rendition of further track id, named by its picture height
// ("480p"), or by its id when another track has that height.
func (h *handler) publishTrack(id uint8) *trackRendition {
	if h.tracks == nil {
		h.tracks = map[uint8]*trackRendition{}
	}
	tr := &trackRendition{name: trackName(id, h.demux.TrackVideo(id), h.tracks)}
	h.tracks[id] = tr
	route := h.route
	route.Rendition = tr.name
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pub, err := h.server.cfg.Hub.Publish(ctx, route, h.conn.RemoteAddr().String())
	if err != nil {
		h.log.Warn("multitrack rendition refused", "track", id, "rendition", tr.name, "err", err)
		tr.failed = true
		return tr
	}
	tr.pub = pub
	go func() {
		<-pub.Done()
		if err := pub.Err(); err != nil {
			h.log.Info("multitrack rendition ended", "track", id, "rendition", tr.name, "reason", err)
		}
	}()
	return tr
}

// trackName names a further track's rendition.
func trackName(id uint8, v *media.VideoTrack, taken map[uint8]*trackRendition) string {
	name := "track" + strconv.Itoa(int(id))
	if v == nil || v.Height <= 0 {
		return name
	}
	byHeight := fmt.Sprintf("%dp", v.Height)
	for _, tr := range taken {
		if tr.name == byHeight {
			return byHeight + "-" + strconv.Itoa(int(id))
		}
	}
	return byHeight
}
