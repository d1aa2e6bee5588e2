package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/yutopp/go-amf0"
	gortmp "github.com/yutopp/go-rtmp"
	rtmpmsg "github.com/yutopp/go-rtmp/message"

	"onair/media"
	"onair/media/flv"
)

// audioOnlyAfter is how long audio may flow without any video configuration before the
// stream starts as audio only (for publishers whose metadata does not say).
const audioOnlyAfter = 2 * time.Second

// handler is go-rtmp's callback target for one connection; go-rtmp calls it from the
// connection's goroutine only.
type handler struct {
	gortmp.DefaultHandler
	server *Server
	conn   *conn
	log    *slog.Logger

	app       string
	pub       *media.Publisher
	route     media.Route
	demux     flv.Demuxer
	tracks    map[uint8]*trackRendition // further video tracks of a multitrack publish
	stream    *media.Stream
	buf       bytes.Buffer
	meta      streamMeta
	firstAuds time.Time // first audio frame seen before the stream started
	dropped   int       // malformed messages skipped, for the log

	failOnce sync.Once
}

type streamMeta struct {
	known              bool
	hasVideo, hasAudio bool
}

// fail records why the connection is being refused or dropped, once.
func (h *handler) fail(reason string, err error) {
	h.failOnce.Do(func() {
		h.server.refuse(reason)
		h.log.Warn("rtmp connection refused", "reason", reason, "err", err)
	})
}

func (h *handler) OnConnect(_ uint32, cmd *rtmpmsg.NetConnectionConnect) error {
	app := strings.Trim(cmd.Command.App, "/")
	if app != h.server.cfg.App {
		err := fmt.Errorf("application %q is not served; publish to rtmp://host/%s/<stream key>", app, h.server.cfg.App)
		h.fail(RefusedBadApp, err)
		return err
	}
	h.app = app
	return nil
}

func (h *handler) OnPlay(_ *gortmp.StreamContext, _ uint32, _ *rtmpmsg.NetStreamPlay) error {
	err := errors.New("playback over RTMP is not offered; watch over HLS")
	h.fail(RefusedUnsupported, err)
	return err
}

func (h *handler) OnPublish(_ *gortmp.StreamContext, _ uint32, cmd *rtmpmsg.NetStreamPublish) error {
	if h.pub != nil {
		return errors.New("this connection already publishes")
	}
	key, rawQuery, _ := strings.Cut(cmd.PublishingName, "?") // OBS may append query parameters
	log := h.log.With("key_id", media.KeyID(key))
	rendition, err := renditionParam(rawQuery)
	if err != nil {
		h.log = log
		h.fail(RefusedBadRendition, err)
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	route, err := h.server.cfg.Resolver.ResolveKey(ctx, key)
	route.Rendition = rendition
	switch {
	case errors.Is(err, media.ErrUnknownKey):
		h.log = log
		h.fail(RefusedUnknownKey, errors.New("unknown stream key"))
		return errors.New("unknown stream key")
	case err != nil:
		h.log = log
		h.fail(RefusedResolverFailed, err)
		return fmt.Errorf("stream key could not be checked: %w", err)
	}

	pub, err := h.server.cfg.Hub.Publish(ctx, route, h.conn.RemoteAddr().String())
	if err != nil {
		h.log = log.With("stream", route.Name)
		reason := RefusedBusy
		switch {
		case errors.Is(err, media.ErrNoMain):
			reason = RefusedNoMain
		case !errors.Is(err, media.ErrStreamBusy):
			reason = RefusedResolverFailed // the cluster could not be asked who holds the stream
		}
		h.fail(reason, err)
		return err
	}
	h.log = log.With("stream", route.Name)
	if rendition != "" {
		h.log = h.log.With("rendition", rendition)
	}
	if err := h.conn.startPublishing(); err != nil {
		pub.Close() // evicted or dropped while the key was being checked
		return err
	}
	h.pub, h.route = pub, route
	h.log.Info("publisher accepted")

	// The hub ends publishers on take-over, idleness and key rotation; closing the socket is
	// what stops go-rtmp's read loop.
	go func() {
		<-pub.Done()
		if err := pub.Err(); err != nil {
			h.log.Info("publisher dropped", "reason", err)
			_ = h.conn.Close()
		}
	}()
	return nil
}

func (h *handler) OnFCUnpublish(_ uint32, _ *rtmpmsg.NetStreamFCUnpublish) error {
	if h.pub != nil {
		h.pub.Close()
	}
	return nil
}

func (h *handler) OnDeleteStream(_ uint32, _ *rtmpmsg.NetStreamDeleteStream) error {
	if h.pub != nil {
		h.pub.Close()
	}
	return nil
}

func (h *handler) OnSetDataFrame(_ uint32, data *rtmpmsg.NetStreamSetDataFrame) error {
	h.meta = parseMetadata(data.Payload)
	return nil
}

func (h *handler) OnAudio(timestamp uint32, payload io.Reader) error {
	return h.onMedia(false, timestamp, payload)
}

func (h *handler) OnVideo(timestamp uint32, payload io.Reader) error {
	return h.onMedia(true, timestamp, payload)
}

func (h *handler) onMedia(video bool, timestamp uint32, payload io.Reader) error {
	if h.pub == nil {
		return errors.New("media before publish")
	}
	b, err := h.read(payload)
	if err != nil {
		return err
	}
	h.pub.Touch()

	now := time.Now()
	var au *media.AccessUnit
	if video {
		var units []flv.TrackUnit
		units, err = h.demux.VideoUnits(timestamp, b, now)
		au = h.trackUnits(units)
	} else {
		au, err = h.demux.Audio(timestamp, b, now)
	}
	switch {
	case errors.Is(err, flv.ErrUnsupportedCodec):
		// Refused rather than served without the track: a stream that plays silent or
		// blank looks fine to its streamer, who would only hear of it from viewers.
		kind := "audio"
		if video {
			kind = "video"
		}
		err = fmt.Errorf("publish refused: the %s codec cannot be served (onair serves H.264, HEVC, AV1 and VP9 video, AAC, Opus and FLAC audio): %w", kind, err)
		h.fail(RefusedUnsupported, err)
		h.pub.Refuse(err)
		return err
	case err != nil:
		// One bad or unsupported message (e.g. MP3 audio) is skipped, not fatal; of a
		// multitrack message, the one track.
		h.dropped++
		if h.dropped == 1 || h.dropped%100 == 0 {
			h.log.Warn("rtmp message skipped", "video", video, "skipped_total", h.dropped, "err", err)
		}
		if au == nil {
			return nil
		}
	case au == nil:
		return nil
	}

	if h.stream == nil && !h.maybeStart(au) {
		return nil
	}
	tracks := h.stream.Tracks()
	if (au.Video && tracks.Video == nil) || (!au.Video && tracks.Audio == nil) {
		return nil
	}
	h.pub.Write(au)
	return nil
}

// maybeStart starts the stream at its first video key frame, or as audio only when the
// publisher sends no video.
func (h *handler) maybeStart(au *media.AccessUnit) bool {
	tracks := h.demux.Tracks()
	switch {
	case au.Video && au.Key && tracks.Video != nil:
	case !au.Video && tracks.Audio != nil && tracks.Video == nil:
		if h.firstAuds.IsZero() {
			h.firstAuds = au.Received
		}
		noVideo := h.meta.known && !h.meta.hasVideo
		if !noVideo && au.Received.Sub(h.firstAuds) < audioOnlyAfter {
			return false
		}
		tracks.Video = nil
	default:
		return false
	}
	h.pub.SetClockBase(h.demux.Base())
	s, err := h.pub.Start(tracks)
	if err != nil {
		h.log.Warn("stream start failed", "err", err)
		return false
	}
	h.stream = s
	return true
}

// read copies the message into a reused buffer; the demuxer copies what it keeps.
func (h *handler) read(payload io.Reader) ([]byte, error) {
	h.buf.Reset()
	if _, err := h.buf.ReadFrom(io.LimitReader(payload, int64(h.server.cfg.MaxMessageSize)+1)); err != nil {
		return nil, fmt.Errorf("read rtmp message: %w", err)
	}
	return h.buf.Bytes(), nil
}

// OnClose ends a publisher whose connection closed. One that unpublished first (OBS's
// Stop Streaming) has ended its run already; otherwise the run waits for it to come back.
func (h *handler) OnClose() {
	if h.pub != nil {
		h.pub.Disconnected()
		h.log.Info("publisher left")
	}
}

// renditionParam reads ?rendition=<name> of a publishing name's query ("" without it).
func renditionParam(rawQuery string) (string, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil || !q.Has("rendition") {
		return "", nil // other parameters (OBS's) are not ours to judge
	}
	name := q.Get("rendition")
	if err := media.ValidRendition(name); err != nil {
		return "", fmt.Errorf("publish refused: %w", err)
	}
	return name, nil
}

// parseMetadata reads onMetaData; it only needs to know which tracks to expect.
func parseMetadata(payload []byte) streamMeta {
	dec := amf0.NewDecoder(bytes.NewReader(payload))
	var name string
	if err := dec.Decode(&name); err != nil || name != "onMetaData" {
		return streamMeta{}
	}
	var props map[string]interface{}
	if err := dec.Decode(&props); err != nil {
		return streamMeta{}
	}
	_, hasVideo := props["videocodecid"]
	_, hasAudio := props["audiocodecid"]
	return streamMeta{known: true, hasVideo: hasVideo, hasAudio: hasAudio}
}
