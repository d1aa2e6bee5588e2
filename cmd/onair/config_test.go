package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The documented file must say exactly what the built-in defaults are.
func TestDefaultConfigFileMatchesDefaults(t *testing.T) {
	got, err := loadConfig("../../configs/onair.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("configs/onair.yaml differs from defaultConfig():\n got %+v\nwant %+v", got, want)
	}
	// Every key is documented in the file.
	b, err := os.ReadFile("../../configs/onair.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for env, target := range envKeys(&want) {
		key := target.key[strings.LastIndex(target.key, ".")+1:]
		if !strings.Contains(string(b), "\n  "+key+":") && !strings.Contains(string(b), "\n"+key+":") {
			t.Errorf("key %s (%s) is not documented in configs/onair.yaml", target.key, env)
		}
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "onair.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	webhookSecretFile := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(webhookSecretFile, []byte("whsec_from-a-kubernetes-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		env     []string
		check   func(t *testing.T, c config)
		wantErr string
	}{
		{
			name: "file values",
			file: "http:\n  addr: \":9000\"\nhls:\n  dvr_window: 5m\n",
			check: func(t *testing.T, c config) {
				if c.HTTP.Addr != ":9000" || c.HLS.DVRWindow != 5*time.Minute {
					t.Fatalf("got %+v", c)
				}
				if c.RTMP.Addr != ":1935" {
					t.Fatalf("unset key lost its default: rtmp.addr = %q", c.RTMP.Addr)
				}
			},
		},
		{
			name: "environment overrides the file",
			file: "http:\n  addr: \":9000\"\n",
			env: []string{"ONAIR_HTTP_ADDR=127.0.0.1:7000", "ONAIR_RTMP_ADDR=:2935", "ONAIR_DATA_DIR=/tmp/x",
				"ONAIR_HLS_PART_DURATION=300ms", "ONAIR_RTMP_MAX_CONNECTIONS=5", "OTHER_VAR=ignored"},
			check: func(t *testing.T, c config) {
				if c.HTTP.Addr != "127.0.0.1:7000" || c.RTMP.Addr != ":2935" || c.Data.Dir != "/tmp/x" ||
					c.HLS.PartDuration != 300*time.Millisecond || c.RTMP.MaxConnections != 5 {
					t.Fatalf("got %+v", c)
				}
			},
		},
		{
			name: "streams from the environment",
			env:  []string{`ONAIR_STREAMS=[{key: "0123456789abcdef0", name: studio}]`},
			check: func(t *testing.T, c config) {
				if len(c.Streams) != 1 || c.Streams[0].Name != "studio" || c.Streams[0].Key != "0123456789abcdef0" {
					t.Fatalf("streams = %+v", c.Streams)
				}
			},
		},
		{
			name: "secret from a file",
			env:  []string{"ONAIR_STORAGE_S3_SECRET_KEY_FILE=" + secretFile, "ONAIR_STORAGE_S3_ACCESS_KEY=ak", "ONAIR_STORAGE_BACKEND=s3", "ONAIR_STORAGE_S3_BUCKET=b"},
			check: func(t *testing.T, c config) {
				if c.Storage.S3SecretKey != "s3cr3t" {
					t.Fatalf("secret = %q", c.Storage.S3SecretKey)
				}
			},
		},
		{name: "missing secret file", env: []string{"ONAIR_STORAGE_S3_SECRET_KEY_FILE=/nonexistent/x"}, wantErr: "ONAIR_STORAGE_S3_SECRET_KEY_FILE (storage.s3_secret_key)"},
		{
			name: "webhook secret from a file",
			file: "webhooks:\n  url: https://hooks.example.com/onair\n",
			env:  []string{"ONAIR_WEBHOOKS_SECRET_FILE=" + webhookSecretFile, "ONAIR_WEBHOOKS_EVENTS=[stream.started, recording.ready]"},
			check: func(t *testing.T, c config) {
				if c.Webhooks.Secret != "whsec_from-a-kubernetes-secret" || c.Webhooks.URL != "https://hooks.example.com/onair" ||
					len(c.Webhooks.Events) != 2 || c.Webhooks.Format != "json" {
					t.Fatalf("webhooks = %+v", c.Webhooks)
				}
			},
		},
		{name: "webhook without secret", env: []string{"ONAIR_WEBHOOKS_URL=https://hooks.example.com/x"}, wantErr: "webhooks.secret: is required with webhooks.url"},
		{name: "slack webhook without secret", env: []string{"ONAIR_WEBHOOKS_URL=https://hooks.slack.com/services/T/B/X", "ONAIR_WEBHOOKS_FORMAT=slack"},
			check: func(t *testing.T, c config) {
				if c.Webhooks.Format != "slack" {
					t.Fatalf("webhooks = %+v", c.Webhooks)
				}
			}},
		{name: "short webhook secret", env: []string{"ONAIR_WEBHOOKS_SECRET=short"}, wantErr: "webhooks.secret: must be at least 16 characters"},
		{name: "webhook url scheme", env: []string{"ONAIR_WEBHOOKS_URL=ftp://x", "ONAIR_WEBHOOKS_SECRET=0123456789abcdef"}, wantErr: "webhooks.url: must be a http or https URL"},
		{name: "webhook format", env: []string{"ONAIR_WEBHOOKS_FORMAT=xml"}, wantErr: `webhooks.format: must be json or slack, got "xml"`},
		{name: "webhook event", file: "webhooks:\n  events: [stream.paused]\n", wantErr: `webhooks.events[0]: unknown event "stream.paused"`},
		{name: "webhook backoff", env: []string{"ONAIR_WEBHOOKS_BACKOFF_MIN=1h"}, wantErr: "webhooks.backoff_min: must not be longer than webhooks.backoff_max"},
		{name: "webhook timeout", env: []string{"ONAIR_WEBHOOKS_TIMEOUT=0s"}, wantErr: "webhooks.timeout: must be a positive duration"},
		{name: "adopting before a node counts as dead", env: []string{"ONAIR_RECORDINGS_ADOPT_AFTER=11s"}, wantErr: "recordings.adopt_after: must be longer than the 11s"},
		{name: "audit queue", env: []string{"ONAIR_AUDIT_QUEUE_SIZE=5"}, wantErr: "audit.queue_size: must be between 100 and 1000000"},
		{name: "chat flush delay too long", env: []string{"ONAIR_CHAT_FLUSH_DELAY=1s"}, wantErr: "chat.flush_delay: must be between 0 (no delay) and 100ms, got 1s"},
		{name: "negative chat flush delay", env: []string{"ONAIR_CHAT_FLUSH_DELAY=-1ms"}, wantErr: "chat.flush_delay: must be between 0 (no delay) and 100ms"},
		{name: "rtmp read interval too long", env: []string{"ONAIR_RTMP_READ_INTERVAL=1s"}, wantErr: "rtmp.read_interval: must be between 0 (read at once) and 100ms, got 1s"},
		{name: "negative rtmp read interval", env: []string{"ONAIR_RTMP_READ_INTERVAL=-1ms"}, wantErr: "rtmp.read_interval: must be between 0 (read at once) and 100ms"},
		{name: "no chat flush delay", env: []string{"ONAIR_CHAT_FLUSH_DELAY=0s"}, check: func(t *testing.T, c config) {
			if c.Chat.FlushDelay != 0 {
				t.Fatalf("chat.flush_delay %s, want 0", c.Chat.FlushDelay)
			}
		}},
		// "0: off", as the keys' comments say, without a unit.
		{name: "bare 0 duration from env", env: []string{"ONAIR_CHAT_FLUSH_DELAY=0"}, check: func(t *testing.T, c config) {
			if c.Chat.FlushDelay != 0 {
				t.Fatalf("chat.flush_delay %s, want 0", c.Chat.FlushDelay)
			}
		}},
		{name: "bare 0 duration in the file", file: "rtmp:\n  read_interval: 0\nchat:\n  flush_delay: 0\n", check: func(t *testing.T, c config) {
			if c.Chat.FlushDelay != 0 || c.RTMP.ReadInterval != 0 {
				t.Fatalf("chat.flush_delay %s, rtmp.read_interval %s, want 0", c.Chat.FlushDelay, c.RTMP.ReadInterval)
			}
		}},
		{name: "duration without unit from env", env: []string{"ONAIR_CHAT_FLUSH_DELAY=5"}, wantErr: `ONAIR_CHAT_FLUSH_DELAY (chat.flush_delay): invalid value "5": want a duration with a unit`},
		{name: "duration without unit in the file", file: "chat:\n  flush_delay: 5\n", wantErr: `line 2: invalid value "5"`},
		{name: "missing webhook secret file", env: []string{"ONAIR_WEBHOOKS_SECRET_FILE=/nonexistent/x"}, wantErr: "ONAIR_WEBHOOKS_SECRET_FILE (webhooks.secret)"},
		{name: "s3 without bucket", env: []string{"ONAIR_STORAGE_BACKEND=s3"}, wantErr: "storage.s3_bucket: is required"},
		{name: "bad mongo uri", env: []string{"ONAIR_MONGO_URI=http://x"}, wantErr: "mongo.uri: must start with mongodb://"},
		{name: "allowed origins from env", env: []string{"ONAIR_HTTP_ALLOWED_ORIGINS=[https://a.example, https://b.example]"}, check: func(t *testing.T, c config) {
			if len(c.HTTP.AllowedOrigins) != 2 || c.HTTP.AllowedOrigins[1] != "https://b.example" {
				t.Fatalf("allowed origins = %v", c.HTTP.AllowedOrigins)
			}
		}},
		{name: "empty file keeps defaults", file: "# nothing\n", check: func(t *testing.T, c config) {
			if !reflect.DeepEqual(c, defaultConfig()) {
				t.Fatalf("got %+v", c)
			}
		}},
		{name: "unknown key in file", file: "http:\n  adr: \":9000\"\n", wantErr: `line 2: unknown key "http.adr"`},
		{name: "unknown section in file", file: "htp:\n  addr: \":9000\"\n", wantErr: `unknown key "htp"`},
		{name: "unknown key in a stream", file: "streams:\n  - key: 0123456789abcdef0\n    nam: x\n", wantErr: `unknown key "streams[].nam"`},
		{name: "unknown environment key", env: []string{"ONAIR_HTTP_ADR=:1"}, wantErr: "ONAIR_HTTP_ADR: unknown key"},
		{name: "bad duration in env", env: []string{"ONAIR_HLS_DVR_WINDOW=soon"}, wantErr: `ONAIR_HLS_DVR_WINDOW (hls.dvr_window): invalid value "soon"`},
		{name: "bad number in file", file: "rtmp:\n  max_connections: many\n", wantErr: `invalid value "many"`},
		{name: "the dropped HLS variant", env: []string{"ONAIR_HLS_VARIANT=mpegts"}, wantErr: `ONAIR_HLS_VARIANT`},
		{name: "bad address", env: []string{"ONAIR_HTTP_ADDR=8080"}, wantErr: `http.addr: invalid listen address "8080"`},
		{name: "bad frame ancestor", env: []string{`ONAIR_HTTP_EMBED_FRAME_ANCESTORS=["https://a.example; script-src *"]`}, wantErr: `http.embed_frame_ancestors: source`},
		{name: "none with others", env: []string{`ONAIR_HTTP_EMBED_FRAME_ANCESTORS=["'none'", "'self'"]`}, wantErr: `http.embed_frame_ancestors: 'none' must be the only source`},
		{name: "part longer than segment", env: []string{"ONAIR_HLS_PART_DURATION=2s"}, wantErr: "hls.part_duration: must be shorter than hls.segment_duration"},
		{name: "no connections per address", env: []string{"ONAIR_RTMP_MAX_CONNECTIONS_PER_ADDRESS=0"}, wantErr: "rtmp.max_connections_per_address: must be at least 1, got 0"},
		{name: "no setup connections", env: []string{"ONAIR_RTMP_MAX_SETUP_CONNECTIONS=0"}, wantErr: "rtmp.max_setup_connections: must be at least 1, got 0"},
		{name: "takeover not shorter than idle", env: []string{"ONAIR_RTMP_TAKEOVER_AFTER=20s"}, wantErr: "rtmp.takeover_after: must be shorter than rtmp.idle_timeout"},
		{name: "short stream key", env: []string{`ONAIR_STREAMS=[{key: short, name: a}]`}, wantErr: "streams[0].key: must be at least 16 characters"},
		{name: "bad stream name", env: []string{`ONAIR_STREAMS=[{key: 0123456789abcdef0, name: "../x"}]`}, wantErr: `streams[0].name: must be lowercase`},
		{name: "duplicate stream name", env: []string{`ONAIR_STREAMS=[{key: 0123456789abcdef0, name: a}, {key: 0123456789abcdef1, name: a}]`}, wantErr: `streams[1].name: "a" is used twice`},
		{name: "bad log level", env: []string{"ONAIR_LOG_LEVEL=loud"}, wantErr: `log.level: must be debug, info, warn or error, got "loud"`},
		{name: "bad public url", env: []string{"ONAIR_RTMP_PUBLIC_URL=http://x"}, wantErr: `rtmp.public_url: must be a rtmp or rtmps URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeConfig(t, tt.file)
			}
			c, err := loadConfig(path, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestEveryKeyHasAnEnvironmentVariable(t *testing.T) {
	c := defaultConfig()
	keys := envKeys(&c)
	for _, name := range []string{"ONAIR_HTTP_ADDR", "ONAIR_RTMP_ADDR", "ONAIR_DATA_DIR", "ONAIR_HLS_DVR_WINDOW", "ONAIR_LOG_FORMAT", "ONAIR_STREAMS"} {
		if _, ok := keys[name]; !ok {
			t.Errorf("%s is not recognised", name)
		}
	}
	// Overriding each key with its own default value must round-trip.
	var env []string
	for name, target := range keys {
		if target.v.Kind() == reflect.Slice {
			continue
		}
		env = append(env, name+"="+formatValue(target.v.Interface()))
	}
	got, err := loadConfig("", env)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip through the environment changed the config:\n got %+v\nwant %+v", got, c)
	}
}

func formatValue(v any) string {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	return fmt.Sprint(v)
}
