package main

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.mongodb.org/mongo-driver/v2/event"

	"onair/media"
)

// metrics exposes onair's state to Prometheus. Most figures are read from the parts'
// own counters when Prometheus scrapes (collect); latencies, which need every sample, are
// histograms fed by hooks. No label is per viewer: rooms are the finest label, and they
// are named by id (roomLabel), since a slug would reveal unlisted rooms to whoever reads
// the metrics.
type metrics struct {
	reg *prometheus.Registry
	app *app

	storageRequests *prometheus.CounterVec
	storageLatency  *prometheus.HistogramVec
	mongoCommands   *prometheus.CounterVec
	mongoLatency    prometheus.Histogram

	liveStreams, publishers, ingestBitrate, viewers, hlsRequests, hlsBytes,
	chatSockets, chatMessages, recordings, spoolBytes, partsPending, rtmpConnections, rtmpRefused,
	sinksDropped, webhookDeliveries *prometheus.Desc
}

func newMetrics(a *app) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		app: a,
		storageRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onair_storage_requests_total", Help: "Object storage operations by operation and result.",
		}, []string{"op", "result"}),
		storageLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "onair_storage_request_duration_seconds", Help: "Object storage operation latency, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"op"}),
		mongoCommands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onair_mongo_commands_total", Help: "MongoDB commands by result.",
		}, []string{"result"}),
		mongoLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "onair_mongo_command_duration_seconds", Help: "MongoDB command latency.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 3, 10),
		}),
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	m.liveStreams = d("onair_live_streams", "Streams being published on this node.")
	m.publishers = d("onair_publishers", "Live publishers by codec.", "video_codec", "audio_codec")
	m.ingestBitrate = d("onair_ingest_bitrate_bits_per_second", "Ingest bitrate of each live room (by room id) over the last seconds.", "room")
	m.viewers = d("onair_viewers", "Estimated concurrent HLS viewers of each live room (by room id) served by this node, "+
		"whether live here or fetched from another node; each viewer counts on one node only, so the sum over nodes is the room's total.", "room")
	m.hlsRequests = d("onair_hls_requests_total", "HLS requests served, by kind of file.", "kind")
	m.hlsBytes = d("onair_hls_bytes_total", "HLS body bytes served, by kind of file.", "kind")
	m.chatSockets = d("onair_chat_sockets", "Open chat websockets.")
	m.chatMessages = d("onair_chat_messages_total", "Chat messages received from clients, delivered to sockets and rejected.", "event")
	m.recordings = d("onair_recordings_in_progress", "Recordings this node is making.")
	m.spoolBytes = d("onair_recording_spool_bytes", "Recording bytes on local disk waiting for object storage.")
	m.partsPending = d("onair_recording_parts_pending", "Recording parts waiting for object storage.")
	m.rtmpConnections = d("onair_rtmp_connections", "Open RTMP connections.")
	m.rtmpRefused = d("onair_rtmp_refused_total", "RTMP connections refused or dropped, by reason.", "reason")
	m.sinksDropped = d("onair_sinks_dropped_total", "Stream outputs dropped for falling behind.")
	m.webhookDeliveries = d("onair_webhook_deliveries_total", "Webhook deliveries by result: delivered, failed (given up), dropped (never stored).", "result")
	m.reg.MustRegister(m, m.storageRequests, m.storageLatency, m.mongoCommands, m.mongoLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// observeStorage is the S3 store's Observe hook.
func (m *metrics) observeStorage(op string, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.storageRequests.WithLabelValues(op, result).Inc()
	m.storageLatency.WithLabelValues(op).Observe(took.Seconds())
}

// mongoMonitor counts and times MongoDB commands through the driver's monitoring hooks.
func (m *metrics) mongoMonitor() *event.CommandMonitor {
	done := func(result string, took time.Duration) {
		m.mongoCommands.WithLabelValues(result).Inc()
		m.mongoLatency.Observe(took.Seconds())
	}
	return &event.CommandMonitor{
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { done("ok", e.Duration) },
		Failed:    func(_ context.Context, e *event.CommandFailedEvent) { done("error", e.Duration) },
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.liveStreams, m.publishers, m.ingestBitrate, m.viewers, m.hlsRequests,
		m.hlsBytes, m.chatSockets, m.chatMessages, m.recordings, m.spoolBytes, m.partsPending, m.rtmpConnections, m.rtmpRefused, m.sinksDropped,
		m.webhookDeliveries} {
		ch <- d
	}
}

// Collect implements prometheus.Collector, reading each part's counters.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	a := m.app
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	streams := a.hub.Streams()
	gauge(m.liveStreams, float64(len(streams)))
	byCodec := map[[2]string]int{}
	viewers := a.web.Viewers()
	for _, st := range streams {
		byCodec[[2]string{string(st.VideoCodec()), string(st.AudioCodec())}]++
		gauge(m.ingestBitrate, float64(st.Stats().Bitrate), roomLabel(st.Route()))
		if _, ok := viewers[st.Name()]; !ok {
			viewers[st.Name()] = 0 // live here, watched by none yet
		}
	}
	for name, n := range viewers {
		if room := a.web.RoomOf(name); room != "" {
			gauge(m.viewers, float64(n), room)
		}
	}
	for k, n := range byCodec {
		gauge(m.publishers, float64(n), k[0], k[1])
	}
	for kind, st := range a.hls.Stats() {
		counter(m.hlsRequests, float64(st.Requests), kind)
		counter(m.hlsBytes, float64(st.Bytes), kind)
	}
	if a.chat != nil {
		st := a.chat.Stats()
		gauge(m.chatSockets, float64(st.Sockets))
		counter(m.chatMessages, float64(st.MessagesReceived), "received")
		counter(m.chatMessages, float64(st.MessagesSent), "delivered")
		counter(m.chatMessages, float64(st.MessagesRejected), "rejected")
	}
	if a.recorder != nil {
		b := a.recorder.Backlog()
		gauge(m.recordings, float64(b.Recordings))
		gauge(m.spoolBytes, float64(b.BytesPending))
		gauge(m.partsPending, float64(b.PartsPending))
	}
	gauge(m.rtmpConnections, float64(a.rtmp.Connections()))
	for reason, n := range a.rtmp.RefusedByReason() {
		counter(m.rtmpRefused, float64(n), reason)
	}
	counter(m.sinksDropped, float64(a.hub.SinksDropped()))
	if a.webhooks != nil {
		st := a.webhooks.Stats()
		counter(m.webhookDeliveries, float64(st.Delivered), "delivered")
		counter(m.webhookDeliveries, float64(st.Failed), "failed")
		counter(m.webhookDeliveries, float64(st.Dropped), "dropped")
	}
}

// roomLabel is a stream's room label: the room's id for rooms, whose slugs may be
// unlisted, and the configured name, public anyway, for the config file's streams.
func roomLabel(r media.Route) string {
	if r.RoomID != "" {
		return r.RoomID
	}
	return r.Name
}
