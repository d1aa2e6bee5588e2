package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"onair/rooms"
	"onair/rooms/cluster"
	"onair/rooms/webhook"
	"onair/storage"
	"onair/web"
	"onair/web/golive"
)

// validate reports every key whose value is wrong, each error naming its key.
func (c *config) validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	checkAddr := func(key, addr string) {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "invalid listen address %q (want host:port or :port)", addr)
		}
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be a positive duration, got %s", d)
		}
	}
	if c.HTTP.Addr != "" {
		checkAddr("http.addr", c.HTTP.Addr) // empty: see validateListeners
	}
	checkAddr("rtmp.addr", c.RTMP.Addr)
	positive("http.read_header_timeout", c.HTTP.ReadHeaderTimeout)
	positive("http.read_timeout", c.HTTP.ReadTimeout)
	positive("http.write_timeout", c.HTTP.WriteTimeout)
	positive("http.idle_timeout", c.HTTP.IdleTimeout)
	if c.HTTP.MaxHeaderBytes < 1024 || c.HTTP.MaxHeaderBytes > 1<<20 {
		bad("http.max_header_bytes", "must be between 1024 and 1048576, got %d", c.HTTP.MaxHeaderBytes)
	}
	checkURL := func(key, u string, schemes ...string) {
		if u == "" {
			return
		}
		scheme, rest, ok := strings.Cut(u, "://")
		if !ok || !slices.Contains(schemes, scheme) || rest == "" {
			bad(key, "must be a %s URL, got %q", strings.Join(schemes, " or "), u)
		}
	}
	checkURL("http.public_url", c.HTTP.PublicURL, "http", "https")
	checkURL("rtmp.public_url", c.RTMP.PublicURL, "rtmp", "rtmps")
	if !streamNameRE.MatchString(c.RTMP.App) {
		bad("rtmp.app", "must be lowercase letters, digits, - or _, got %q", c.RTMP.App)
	}
	positive("rtmp.setup_timeout", c.RTMP.SetupTimeout)
	positive("rtmp.idle_timeout", c.RTMP.IdleTimeout)
	positive("rtmp.takeover_after", c.RTMP.TakeoverAfter)
	if c.RTMP.TakeoverAfter >= c.RTMP.IdleTimeout {
		bad("rtmp.takeover_after", "must be shorter than rtmp.idle_timeout (%s), got %s", c.RTMP.IdleTimeout, c.RTMP.TakeoverAfter)
	}
	if c.RTMP.MaxConnections < 1 {
		bad("rtmp.max_connections", "must be at least 1, got %d", c.RTMP.MaxConnections)
	}
	if c.RTMP.MaxConnectionsPerAddress < 1 {
		bad("rtmp.max_connections_per_address", "must be at least 1, got %d", c.RTMP.MaxConnectionsPerAddress)
	}
	if c.RTMP.MaxSetupConnections < 1 {
		bad("rtmp.max_setup_connections", "must be at least 1, got %d", c.RTMP.MaxSetupConnections)
	}
	if c.RTMP.MaxMessageSize < 64<<10 || c.RTMP.MaxMessageSize > 16<<20 {
		bad("rtmp.max_message_size", "must be between 65536 and 16777216 bytes, got %d", c.RTMP.MaxMessageSize)
	}
	if c.RTMP.ReadInterval < 0 || c.RTMP.ReadInterval > 100*time.Millisecond {
		bad("rtmp.read_interval", "must be between 0 (read at once) and 100ms, got %s", c.RTMP.ReadInterval)
	}
	if least := golive.MinVideoKbps + golive.AudioKbps; c.RTMP.MaxLadderKbps < least || c.RTMP.MaxLadderKbps > rooms.MaxLadderKbps {
		bad("rtmp.max_ladder_kbps", "must be between %d and %d kbit/s, got %d", least, rooms.MaxLadderKbps, c.RTMP.MaxLadderKbps)
	}
	positive("hls.segment_duration", c.HLS.SegmentDuration)
	positive("hls.part_duration", c.HLS.PartDuration)
	positive("hls.end_grace", c.HLS.EndGrace)
	if c.HLS.PartDuration >= c.HLS.SegmentDuration {
		bad("hls.part_duration", "must be shorter than hls.segment_duration (%s), got %s", c.HLS.SegmentDuration, c.HLS.PartDuration)
	}
	if c.HLS.DVRWindow < 3*c.HLS.SegmentDuration {
		bad("hls.dvr_window", "must hold at least 3 segments (%s), got %s", 3*c.HLS.SegmentDuration, c.HLS.DVRWindow)
	}
	if c.Data.Dir == "" {
		bad("data.dir", "must not be empty")
	}
	if c.Mongo.URI != "" && !strings.HasPrefix(c.Mongo.URI, "mongodb://") && !strings.HasPrefix(c.Mongo.URI, "mongodb+srv://") {
		bad("mongo.uri", "must start with mongodb:// or mongodb+srv://")
	}
	if !mongoDBName.MatchString(c.Mongo.Database) {
		bad("mongo.database", "must be 1-38 letters, digits, _ or -, got %q", c.Mongo.Database)
	}
	if c.Auth.SessionTTL < time.Hour {
		bad("auth.session_ttl", "must be at least 1h, got %s", c.Auth.SessionTTL)
	}
	if c.Auth.SignUpLimit < 0 {
		bad("auth.signup_limit", "must be 0 (no limit) or more, got %d", c.Auth.SignUpLimit)
	}
	positive("auth.signup_window", c.Auth.SignUpWindow)
	if c.Auth.OIDCIssuer != "" {
		if u, err := url.Parse(c.Auth.OIDCIssuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("auth.oidc_issuer", "must be the provider's http(s) issuer URL, got %q", c.Auth.OIDCIssuer)
		}
		if c.Auth.OIDCClientID == "" {
			bad("auth.oidc_client_id", "is required with auth.oidc_issuer")
		}
		if strings.TrimSpace(c.Auth.OIDCName) == "" {
			bad("auth.oidc_name", "must not be empty: the login page says \"Sign in with\" it")
		}
	}
	if c.Chat.History < 0 || c.Chat.History > 500 {
		bad("chat.history", "must be between 0 and 500, got %d", c.Chat.History)
	}
	if c.Chat.MaxLength < 1 || c.Chat.MaxLength > 10000 {
		bad("chat.max_length", "must be between 1 and 10000, got %d", c.Chat.MaxLength)
	}
	if c.Chat.RateLimit < 1 {
		bad("chat.rate_limit", "must be at least 1, got %d", c.Chat.RateLimit)
	}
	positive("chat.rate_per", c.Chat.RatePer)
	// At most a page's playback token's life, so that chat and playback end together.
	if c.Chat.AdmitInterval < time.Second || c.Chat.AdmitInterval > 5*time.Minute {
		bad("chat.admit_interval", "must be between 1s and 5m, got %s", c.Chat.AdmitInterval)
	}
	if c.Chat.FlushDelay < 0 || c.Chat.FlushDelay > 100*time.Millisecond {
		bad("chat.flush_delay", "must be between 0 (no delay) and 100ms, got %s", c.Chat.FlushDelay)
	}
	if c.Audit.QueueSize < 100 || c.Audit.QueueSize > 1_000_000 {
		bad("audit.queue_size", "must be between 100 and 1000000, got %d", c.Audit.QueueSize)
	}
	c.validateWebhooks(bad, checkURL)
	c.validateListeners(bad, checkAddr, checkURL)
	switch c.Storage.Backend {
	case "local":
	case "s3":
		if c.Storage.S3Bucket == "" {
			bad("storage.s3_bucket", "is required with storage.backend s3")
		}
		checkURL("storage.s3_endpoint", c.Storage.S3Endpoint, "http", "https")
		if (c.Storage.S3AccessKey == "") != (c.Storage.S3SecretKey == "") {
			bad("storage.s3_secret_key", "set both s3_access_key and s3_secret_key, or neither (the AWS credential chain)")
		}
	default:
		bad("storage.backend", "must be local or s3, got %q", c.Storage.Backend)
	}
	if c.Recordings.RetentionDays < 0 || c.Recordings.RetentionDays > 3650 {
		bad("recordings.retention_days", "must be between 0 (keep forever) and 3650, got %d", c.Recordings.RetentionDays)
	}
	if c.Recordings.LifecycleRule && (c.Storage.Backend != "s3" || c.Recordings.RetentionDays == 0) {
		bad("recordings.lifecycle_rule", "needs storage.backend s3 and recordings.retention_days > 0")
	}
	if c.Recordings.SpoolMaxDisk < 64<<20 {
		bad("recordings.spool_max_disk", "must be at least 67108864 bytes, got %d", c.Recordings.SpoolMaxDisk)
	}
	if c.Recordings.ChunkSize < storage.MinPartSize || c.Recordings.ChunkSize > 1<<30 {
		bad("recordings.chunk_size", "must be between %d (S3's smallest part) and 1073741824 bytes, got %d", storage.MinPartSize, c.Recordings.ChunkSize)
	}
	if c.Recordings.SpoolMaxDisk < 2*c.Recordings.ChunkSize {
		bad("recordings.spool_max_disk", "must hold at least two chunks (recordings.chunk_size %d), got %d", c.Recordings.ChunkSize, c.Recordings.SpoolMaxDisk)
	}
	if c.Recordings.AdoptAfter <= cluster.DefaultStaleAfter {
		bad("recordings.adopt_after", "must be longer than the %s after which a silent node counts as dead, got %s",
			cluster.DefaultStaleAfter, c.Recordings.AdoptAfter)
	}
	c.Uploads.validate(bad)
	for i, o := range c.HTTP.AllowedOrigins {
		checkURL(fmt.Sprintf("http.allowed_origins[%d]", i), o, "http", "https")
	}
	if _, err := web.FrameAncestors(c.HTTP.EmbedFrameAncestors); err != nil {
		bad("http.embed_frame_ancestors", "%v", err)
	}
	checkURL("node.advertise_url", c.Node.AdvertiseURL, "http", "https")
	if c.Shutdown.Timeout < time.Second || c.Shutdown.Timeout > 10*time.Minute {
		bad("shutdown.timeout", "must be between 1s and 10m, got %s", c.Shutdown.Timeout)
	}
	if c.Node.ID != "" && !nodeIDRE.MatchString(c.Node.ID) {
		bad("node.id", "must be 1-64 letters, digits, ., _ or -, got %q", c.Node.ID)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	names := map[string]bool{}
	keys := map[string]bool{}
	for i, s := range c.Streams {
		key := fmt.Sprintf("streams[%d]", i)
		if len(s.Key) < 16 {
			bad(key+".key", "must be at least 16 characters")
		}
		if !streamNameRE.MatchString(s.Name) {
			bad(key+".name", "must be lowercase letters, digits, - or _ (at most 63), got %q", s.Name)
		}
		if names[s.Name] {
			bad(key+".name", "%q is used twice", s.Name)
		}
		if keys[s.Key] {
			bad(key+".key", "is used twice")
		}
		names[s.Name], keys[s.Key] = true, true
	}
	return errors.Join(errs...)
}

// validateWebhooks checks the webhooks section.
func (c *config) validateWebhooks(bad func(key, format string, args ...any), checkURL func(key, u string, schemes ...string)) {
	wh := &c.Webhooks
	checkURL("webhooks.url", wh.URL, "http", "https")
	switch wh.Format {
	case string(webhook.FormatJSON), string(webhook.FormatSlack):
	default:
		bad("webhooks.format", "must be json or slack, got %q", wh.Format)
	}
	if wh.URL != "" && wh.Secret == "" && wh.Format == string(webhook.FormatJSON) {
		bad("webhooks.secret", "is required with webhooks.url: it signs the deliveries (ONAIR_WEBHOOKS_SECRET_FILE reads it from a file)")
	}
	if wh.Secret != "" && len(wh.Secret) < 16 {
		bad("webhooks.secret", "must be at least 16 characters")
	}
	for i, e := range wh.Events {
		if !slices.Contains(webhook.EventTypes, e) {
			bad(fmt.Sprintf("webhooks.events[%d]", i), "unknown event %q (known: %s)", e, strings.Join(webhook.EventTypes, ", "))
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"webhooks.timeout", wh.Timeout}, {"webhooks.backoff_min", wh.BackoffMin}, {"webhooks.backoff_max", wh.BackoffMax},
		{"webhooks.give_up_after", wh.GiveUpAfter}} {
		if d.v <= 0 {
			bad(d.key, "must be a positive duration, got %s", d.v)
		}
	}
	if wh.Timeout > 5*time.Minute {
		bad("webhooks.timeout", "must be at most 5m, got %s", wh.Timeout)
	}
	if wh.BackoffMin > wh.BackoffMax {
		bad("webhooks.backoff_min", "must not be longer than webhooks.backoff_max (%s), got %s", wh.BackoffMax, wh.BackoffMin)
	}
	if wh.LogRetention < time.Hour {
		bad("webhooks.log_retention", "must be at least 1h, got %s", wh.LogRetention)
	}
}
