package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"onair/rooms/cluster"
	"onair/rooms/webhook"
	"onair/storage"
)

// config is onair's configuration: configs/onair.yaml documents every key. Each key can be
// overridden by an environment variable ONAIR_<SECTION>_<KEY> (ONAIR_HTTP_ADDR), and a
// top-level list by ONAIR_<KEY> holding YAML (ONAIR_STREAMS='[{key: k, name: demo}]').
type config struct {
	HTTP       httpConfig       `yaml:"http"`
	RTMP       rtmpConfig       `yaml:"rtmp"`
	TLS        tlsConfig        `yaml:"tls"`
	Metrics    metricsConfig    `yaml:"metrics"`
	HLS        hlsConfig        `yaml:"hls"`
	Mongo      mongoConfig      `yaml:"mongo"`
	Auth       authConfig       `yaml:"auth"`
	Chat       chatConfig       `yaml:"chat"`
	Audit      auditConfig      `yaml:"audit"`
	Webhooks   webhooksConfig   `yaml:"webhooks"`
	Storage    storageConfig    `yaml:"storage"`
	Recordings recordingsConfig `yaml:"recordings"`
	Data       dataConfig       `yaml:"data"`
	Node       nodeConfig       `yaml:"node"`
	Shutdown   shutdownConfig   `yaml:"shutdown"`
	Log        logConfig        `yaml:"log"`
	Streams    []streamConfig   `yaml:"streams"`
}

type mongoConfig struct {
	URI      string `yaml:"uri"`
	Database string `yaml:"database"`
}

type authConfig struct {
	SessionTTL       time.Duration `yaml:"session_ttl"`
	SignUpLimit      int           `yaml:"signup_limit"`
	SignUpWindow     time.Duration `yaml:"signup_window"`
	OIDCIssuer       string        `yaml:"oidc_issuer"`
	OIDCClientID     string        `yaml:"oidc_client_id"`
	OIDCClientSecret string        `yaml:"oidc_client_secret"`
	OIDCName         string        `yaml:"oidc_name"`
}

type auditConfig struct {
	QueueSize int `yaml:"queue_size"`
}

type webhooksConfig struct {
	URL          string        `yaml:"url"`
	Secret       string        `yaml:"secret"`
	Format       string        `yaml:"format"`
	Events       []string      `yaml:"events"`
	AllowPrivate bool          `yaml:"allow_private"`
	Timeout      time.Duration `yaml:"timeout"`
	BackoffMin   time.Duration `yaml:"backoff_min"`
	BackoffMax   time.Duration `yaml:"backoff_max"`
	GiveUpAfter  time.Duration `yaml:"give_up_after"`
	LogRetention time.Duration `yaml:"log_retention"`
}

type chatConfig struct {
	History    int           `yaml:"history"`
	MaxLength  int           `yaml:"max_length"`
	RateLimit  int           `yaml:"rate_limit"`
	RatePer    time.Duration `yaml:"rate_per"`
	FlushDelay time.Duration `yaml:"flush_delay"`
}

type storageConfig struct {
	Backend        string `yaml:"backend"`
	LocalDir       string `yaml:"local_dir"`
	S3Endpoint     string `yaml:"s3_endpoint"`
	S3Region       string `yaml:"s3_region"`
	S3Bucket       string `yaml:"s3_bucket"`
	S3Prefix       string `yaml:"s3_prefix"`
	S3PathStyle    bool   `yaml:"s3_path_style"`
	S3AccessKey    string `yaml:"s3_access_key"`
	S3SecretKey    string `yaml:"s3_secret_key"`
	S3CreateBucket bool   `yaml:"s3_create_bucket"`
}

type recordingsConfig struct {
	Enabled       bool          `yaml:"enabled"`
	RetentionDays int           `yaml:"retention_days"`
	LifecycleRule bool          `yaml:"lifecycle_rule"`
	SpoolMaxDisk  int64         `yaml:"spool_max_disk"`
	ChunkSize     int64         `yaml:"chunk_size"`
	AdoptAfter    time.Duration `yaml:"adopt_after"`
}

type nodeConfig struct {
	ID           string `yaml:"id"`
	AdvertiseURL string `yaml:"advertise_url"`
}

type shutdownConfig struct {
	Timeout time.Duration `yaml:"timeout"`
}

type httpConfig struct {
	Addr              string        `yaml:"addr"`
	TLSAddr           string        `yaml:"tls_addr"`
	HSTSMaxAge        time.Duration `yaml:"hsts_max_age"`
	PublicURL         string        `yaml:"public_url"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
	TrustProxy        bool          `yaml:"trust_proxy"`
	AllowedOrigins    []string      `yaml:"allowed_origins"`
}

type rtmpConfig struct {
	Addr                     string        `yaml:"addr"`
	TLSAddr                  string        `yaml:"tls_addr"`
	PublicURL                string        `yaml:"public_url"`
	TLSPublicURL             string        `yaml:"tls_public_url"`
	App                      string        `yaml:"app"`
	SetupTimeout             time.Duration `yaml:"setup_timeout"`
	IdleTimeout              time.Duration `yaml:"idle_timeout"`
	TakeoverAfter            time.Duration `yaml:"takeover_after"`
	MaxConnections           int           `yaml:"max_connections"`
	MaxConnectionsPerAddress int           `yaml:"max_connections_per_address"`
	MaxMessageSize           int           `yaml:"max_message_size"`
	ReadInterval             time.Duration `yaml:"read_interval"`
}

type hlsConfig struct {
	SegmentDuration time.Duration `yaml:"segment_duration"`
	PartDuration    time.Duration `yaml:"part_duration"`
	DVRWindow       time.Duration `yaml:"dvr_window"`
	EndGrace        time.Duration `yaml:"end_grace"`
}

type dataConfig struct {
	Dir string `yaml:"dir"`
}

type logConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

type streamConfig struct {
	Key  string `yaml:"key"`
	Name string `yaml:"name"`
}

// defaultConfig holds the values used for keys the file and environment leave out; they
// match configs/onair.yaml (a test checks).
func defaultConfig() config {
	return config{
		HTTP: httpConfig{
			Addr:              ":8080",
			HSTSMaxAge:        365 * 24 * time.Hour,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    16 << 10,
			AllowedOrigins:    []string{},
		},
		RTMP: rtmpConfig{
			Addr:                     ":1935",
			App:                      "live",
			SetupTimeout:             10 * time.Second,
			IdleTimeout:              10 * time.Second,
			TakeoverAfter:            5 * time.Second,
			MaxConnections:           1000,
			MaxConnectionsPerAddress: 16,
			MaxMessageSize:           8 << 20,
			ReadInterval:             20 * time.Millisecond,
		},
		TLS:     tlsConfig{ACMEDomains: []string{}},
		Metrics: metricsConfig{Addr: "127.0.0.1:9935"},
		HLS: hlsConfig{
			SegmentDuration: time.Second,
			PartDuration:    200 * time.Millisecond,
			DVRWindow:       2 * time.Minute,
			EndGrace:        30 * time.Second,
		},
		Mongo: mongoConfig{Database: "onair"},
		Auth:  authConfig{SessionTTL: 30 * 24 * time.Hour, SignUpLimit: 5, SignUpWindow: time.Hour, OIDCName: "SSO"},
		Chat:  chatConfig{History: 50, MaxLength: 500, RateLimit: 5, RatePer: 10 * time.Second, FlushDelay: 15 * time.Millisecond},
		Audit: auditConfig{QueueSize: 10000},
		Webhooks: webhooksConfig{
			Format: "json", Events: []string{}, Timeout: 10 * time.Second, BackoffMin: 5 * time.Second,
			BackoffMax: 10 * time.Minute, GiveUpAfter: time.Hour, LogRetention: 7 * 24 * time.Hour,
		},
		Storage: storageConfig{
			Backend:  "local",
			S3Region: "us-east-1",
		},
		Recordings: recordingsConfig{Enabled: true, SpoolMaxDisk: 1 << 30, ChunkSize: 8 << 20, AdoptAfter: time.Minute},
		Data:       dataConfig{Dir: "./data"},
		Shutdown:   shutdownConfig{Timeout: 25 * time.Second},
		Log:        logConfig{Level: "info", Format: "text"},
		Streams:    []streamConfig{},
	}
}

const envPrefix = "ONAIR_"

// loadConfig reads path (if not empty) over the defaults, then applies ONAIR_* variables
// from environ, then validates. Unknown keys and invalid values are errors naming the key.
func loadConfig(path string, environ []string) (config, error) {
	cfg := defaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if err := decodeConfigFile(b, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return cfg, err
	}
	if err := cfg.validate(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

func decodeConfigFile(b []byte, cfg *config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		return nil // an empty file keeps the defaults
	}
	root := doc.Content[0]
	if err := checkKeys(root, reflect.TypeOf(*cfg), ""); err != nil {
		return err
	}
	if err := root.Decode(cfg); err != nil {
		return unwrapYAMLError(err)
	}
	return nil
}

// checkKeys reports the first key in n that t has no field for, with its line.
func checkKeys(n *yaml.Node, t reflect.Type, prefix string) error {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode {
			for _, item := range n.Content {
				if err := checkKeys(item, t.Elem(), prefix+"[]"); err != nil {
					return err
				}
			}
			return nil
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f, ok := fieldByTag(t, k.Value)
		name := strings.TrimPrefix(prefix+"."+k.Value, ".")
		if !ok {
			return fmt.Errorf("line %d: unknown key %q", k.Line, name)
		}
		if err := checkKeys(v, f.Type, name); err != nil {
			return err
		}
	}
	return nil
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if yamlName(f) == tag {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

var yamlFieldErr = regexp.MustCompile(`cannot unmarshal !!\w+ ` + "`" + `([^` + "`" + `]*)` + "`" + ` into (\S+)`)

// unwrapYAMLError makes yaml.v3's type errors say which value was wrong.
func unwrapYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			if m := yamlFieldErr.FindStringSubmatch(e); m != nil {
				e = strings.Replace(e, m[0], fmt.Sprintf("invalid value %q (want %s)", m[1], m[2]), 1)
			}
			msgs = append(msgs, e)
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return err
}

// envKeys maps every ONAIR_* variable name to the field it sets.
func envKeys(cfg *config) map[string]envTarget {
	out := map[string]envTarget{}
	root := reflect.ValueOf(cfg).Elem()
	for i := 0; i < root.NumField(); i++ {
		section := root.Type().Field(i)
		sv := root.Field(i)
		sname := yamlName(section)
		if sv.Kind() != reflect.Struct {
			out[envPrefix+strings.ToUpper(sname)] = envTarget{key: sname, v: sv}
			continue
		}
		for j := 0; j < sv.NumField(); j++ {
			kname := yamlName(sv.Type().Field(j))
			out[envPrefix+strings.ToUpper(sname+"_"+kname)] = envTarget{key: sname + "." + kname, v: sv.Field(j)}
		}
	}
	return out
}

type envTarget struct {
	key string // as written in the file, e.g. "hls.dvr_window"
	v   reflect.Value
}

func applyEnv(cfg *config, environ []string) error {
	keys := envKeys(cfg)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) {
			continue
		}
		t, known := keys[name]
		if base, isFile := strings.CutSuffix(name, "_FILE"); !known && isFile {
			// Secrets mounted as files (Kubernetes): ONAIR_STORAGE_S3_SECRET_KEY_FILE=/run/secrets/s3.
			if t, known = keys[base]; known {
				b, err := os.ReadFile(value)
				if err != nil {
					return fmt.Errorf("environment variable %s (%s): %w", name, t.key, err)
				}
				value = strings.TrimRight(string(b), "\r\n")
			}
		}
		if !known {
			return fmt.Errorf("environment variable %s: unknown key (see configs/onair.yaml for the keys)", name)
		}
		if t.v.Kind() == reflect.String {
			t.v.SetString(value)
			continue
		}
		p := reflect.New(t.v.Type())
		if err := yaml.Unmarshal([]byte(value), p.Interface()); err != nil {
			return fmt.Errorf("environment variable %s (%s): invalid value %q: %w", name, t.key, value, unwrapYAMLError(err))
		}
		t.v.Set(p.Elem())
	}
	return nil
}

var (
	streamNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	mongoDBName  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,38}$`)
	nodeIDRE     = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

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
	if c.RTMP.MaxMessageSize < 64<<10 || c.RTMP.MaxMessageSize > 16<<20 {
		bad("rtmp.max_message_size", "must be between 65536 and 16777216 bytes, got %d", c.RTMP.MaxMessageSize)
	}
	if c.RTMP.ReadInterval < 0 || c.RTMP.ReadInterval > 100*time.Millisecond {
		bad("rtmp.read_interval", "must be between 0 (read at once) and 100ms, got %s", c.RTMP.ReadInterval)
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
	for i, o := range c.HTTP.AllowedOrigins {
		checkURL(fmt.Sprintf("http.allowed_origins[%d]", i), o, "http", "https")
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
