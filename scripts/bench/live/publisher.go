package live

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"onair/scripts/bench/oldkit"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	gortmp "github.com/yutopp/go-rtmp"
	rtmpmsg "github.com/yutopp/go-rtmp/message"
)

// Chunk stream ids: metadata and audio on 4, video on 6 (apart, so that each chunk
// stream's timestamps only go forward).
const (
	csidData  = 4
	csidAudio = 4
	csidVideo = 6

	publishChunkSize = 4096
	setupTimeout     = 10 * time.Second
)

// stampedPublisher sends FLV tags over RTMP in real time, by their timestamps, and puts a
// send-time stamp (see sei.go) into every video access unit right before sending it.
type stampedPublisher struct {
	target oldkit.RtmpTarget
	tags   []oldkit.FlvTag
	// Duration stops the publisher after this much media time; 0 sends every tag.
	duration time.Duration

	mu     sync.Mutex
	stamps []int64 // send times of the stamped access units
}

// Stamps returns the send times stamped so far.
func (p *stampedPublisher) Stamps() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int64(nil), p.stamps...)
}

// Run publishes until the tags run out, duration is reached or ctx ends; it returns nil
// in the first two cases and when ctx ends.
func (p *stampedPublisher) Run(ctx context.Context) error {
	stream, closeConn, err := p.setup(ctx)
	if err != nil {
		return err
	}
	defer closeConn()

	lengthSize := 4
	var base time.Time
	first := p.tags[0].Timestamp
	for _, tag := range p.tags {
		mediaTime := time.Duration(tag.Timestamp-first) * time.Millisecond
		if p.duration > 0 && mediaTime > p.duration {
			return nil
		}
		if base.IsZero() {
			base = time.Now()
		} else if err := oldkit.SleepUntil(ctx, base.Add(mediaTime)); err != nil {
			return nil
		}
		switch tag.Type {
		case oldkit.FlvTagScript:
			err = stream.Write(csidData, tag.Timestamp, &rtmpmsg.DataMessage{
				Name:     "@setDataFrame",
				Encoding: rtmpmsg.EncodingTypeAMF0,
				Body:     bytes.NewReader(tag.Data),
			})
		case oldkit.FlvTagAudio:
			err = stream.Write(csidAudio, tag.Timestamp, &rtmpmsg.AudioMessage{Payload: bytes.NewReader(tag.Data)})
		case oldkit.FlvTagVideo:
			body := tag.Data
			if n, ok := oldkit.AvcLengthSize(body); ok {
				lengthSize = n
			} else {
				now := time.Now().UnixNano()
				var stamped bool
				if body, stamped, err = oldkit.StampVideoTag(body, lengthSize, now); err != nil {
					return fmt.Errorf("publish %s: stamp video at %d ms: %w", p.target, tag.Timestamp, err)
				}
				if stamped {
					p.mu.Lock()
					p.stamps = append(p.stamps, now)
					p.mu.Unlock()
				}
			}
			err = stream.Write(csidVideo, tag.Timestamp, &rtmpmsg.VideoMessage{Payload: bytes.NewReader(body)})
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("publish %s: write tag at %d ms: %w", p.target, tag.Timestamp, err)
		}
	}
	return nil
}

// setup dials, connects and starts publishing. go-rtmp's client calls have no deadline
// of their own, so they run in a goroutine that is abandoned (with its connection closed)
// when setupTimeout or ctx ends first.
func (p *stampedPublisher) setup(ctx context.Context) (*gortmp.Stream, func(), error) {
	done := make(chan setupResult, 1)
	go func() {
		logger := logrus.New()
		logger.SetOutput(io.Discard)
		conn, err := gortmp.Dial("rtmp", p.target.Addr, &gortmp.ConnConfig{Logger: logger})
		if err != nil {
			done <- setupResult{err: fmt.Errorf("dial: %w", err)}
			return
		}
		fail := func(what string, err error) {
			_ = conn.Close()
			done <- setupResult{err: fmt.Errorf("%s: %w", what, err)}
		}
		if err := conn.Connect(&rtmpmsg.NetConnectionConnect{Command: rtmpmsg.NetConnectionConnectCommand{
			App:      p.target.App,
			Type:     "nonprivate",
			FlashVer: "FMLE/3.0 (compatible; onair-bench)",
			TCURL:    "rtmp://" + p.target.Addr + "/" + p.target.App,
		}}); err != nil {
			fail("connect", err)
			return
		}
		stream, err := conn.CreateStream(nil, publishChunkSize)
		if err != nil {
			fail("create stream", err)
			return
		}
		if err := stream.Publish(&rtmpmsg.NetStreamPublish{PublishingName: p.target.Name, PublishingType: "live"}); err != nil {
			fail("publish", err)
			return
		}
		done <- setupResult{conn: conn, stream: stream}
	}()
	timer := time.NewTimer(setupTimeout)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, nil, fmt.Errorf("publish %s: %w", p.target, r.err)
		}
		return r.stream, func() { _ = r.conn.Close() }, nil
	case <-ctx.Done():
		go closeLate(done)
		return nil, nil, fmt.Errorf("publish %s: %w", p.target, ctx.Err())
	case <-timer.C:
		go closeLate(done)
		return nil, nil, fmt.Errorf("publish %s: no answer within %s", p.target, setupTimeout)
	}
}

type setupResult struct {
	conn   *gortmp.ClientConn
	stream *gortmp.Stream
	err    error
}

// closeLate closes a connection whose setup finished after its caller gave up.
func closeLate(done <-chan setupResult) {
	if r := <-done; r.conn != nil {
		_ = r.conn.Close()
	}
}
