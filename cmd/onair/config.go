package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
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
	Uploads    uploadsConfig    `yaml:"uploads"`
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
	// AdmitInterval is how often each node re-checks that its chat sockets' users may
	// still be in their rooms (private rooms' invitations).
	AdmitInterval time.Duration `yaml:"admit_interval"`
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
	// EmbedFrameAncestors may frame the embed pages (CSP frame-ancestors sources).
	EmbedFrameAncestors []string `yaml:"embed_frame_ancestors"`
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
	MaxSetupConnections      int           `yaml:"max_setup_connections"`
	MaxMessageSize           int           `yaml:"max_message_size"`
	ReadInterval             time.Duration `yaml:"read_interval"`
	MaxLadderKbps            int           `yaml:"max_ladder_kbps"`
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
			Addr:                ":8080",
			HSTSMaxAge:          365 * 24 * time.Hour,
			ReadHeaderTimeout:   5 * time.Second,
			ReadTimeout:         30 * time.Second,
			WriteTimeout:        60 * time.Second,
			IdleTimeout:         120 * time.Second,
			MaxHeaderBytes:      16 << 10,
			AllowedOrigins:      []string{},
			EmbedFrameAncestors: []string{"*"},
		},
		RTMP: rtmpConfig{
			Addr:                     ":1935",
			App:                      "live",
			SetupTimeout:             10 * time.Second,
			IdleTimeout:              10 * time.Second,
			TakeoverAfter:            5 * time.Second,
			MaxConnections:           1000,
			MaxConnectionsPerAddress: 16,
			MaxSetupConnections:      64,
			MaxMessageSize:           8 << 20,
			ReadInterval:             20 * time.Millisecond,
			MaxLadderKbps:            10000,
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
		Chat:  chatConfig{History: 50, MaxLength: 500, RateLimit: 5, RatePer: 10 * time.Second, FlushDelay: 15 * time.Millisecond, AdmitInterval: 30 * time.Second},
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
		Uploads:    defaultUploadsConfig(),
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
	if t == durationType && n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		// YAML reads a bare 0 as an integer, which yaml.v3 refuses for a duration although
		// the comments of the keys say "0: off"; as a string it parses as one (and a bare 5
		// is refused for its missing unit).
		n.Tag = "!!str"
	}
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

var durationType = reflect.TypeFor[time.Duration]()

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
		if t.v.Type() == durationType {
			d, err := time.ParseDuration(value)
			if err != nil {
				return fmt.Errorf("environment variable %s (%s): invalid value %q: want a duration with a unit (500ms, 10s, 2m) or 0", name, t.key, value)
			}
			t.v.SetInt(int64(d))
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
