// Command onair runs the live streaming server: RTMP ingest, HLS, the web pages.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"onair/media"
)

func main() {
	if err := run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "onair:", err)
		os.Exit(1)
	}
}

func run(args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("onair", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (see configs/onair.yaml); ONAIR_* variables override it")
	demo := fs.Bool("demo", false, "add a stream called demo whose key is kept in data.dir, and print how to publish to it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath, environ)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)

	if err := os.MkdirAll(cfg.Data.Dir, 0o750); err != nil {
		return fmt.Errorf("create data.dir %s: %w", cfg.Data.Dir, err)
	}
	keys := media.StaticKeys{}
	for _, s := range cfg.Streams {
		keys[s.Key] = media.Route{Name: s.Name}
	}
	var demoKey string
	if *demo {
		if demoKey, err = loadDemoKey(cfg.Data.Dir); err != nil {
			return err
		}
		keys[demoKey] = media.Route{Name: "demo"}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	certs, err := newCertSource(cfg, log)
	if err != nil {
		return err
	}
	ls, err := openListeners(cfg, certs)
	if err != nil {
		return err
	}
	ls.resolve(&cfg)
	a, err := newApp(ctx, cfg, log, keys)
	if err != nil {
		ls.close()
		return err
	}
	printBanner(stdout, cfg, demoKey)
	return a.run(ctx, ls)
}

func newLogger(cfg logConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated with the config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// loadDemoKey returns the demo stream's key, created at first use and kept in the data
// directory so that OBS keeps working across restarts of `make run`.
func loadDemoKey(dir string) (string, error) {
	return persistentRandom(filepath.Join(dir, "demo-stream-key"), func(b []byte) string { return hex.EncodeToString(b[:16]) })
}

// printBanner tells a person at the terminal where to point OBS and the browser. It goes to
// stdout, not the log: the key is shown to the operator who owns it and nowhere else. The
// addresses in cfg are the listeners' own (see listeners.resolve).
func printBanner(w io.Writer, cfg config, demoKey string) {
	rtmpURL := cfg.RTMP.PublicURL
	if rtmpURL == "" {
		rtmpURL = fmt.Sprintf("rtmp://%s/%s", displayHostPort(cfg.RTMP.Addr, "localhost"), cfg.RTMP.App)
	}
	rtmpsURL := cfg.RTMP.TLSPublicURL
	if rtmpsURL == "" && cfg.RTMP.TLSAddr != "" {
		rtmpsURL = fmt.Sprintf("rtmps://%s/%s", displayHostPort(cfg.RTMP.TLSAddr, "localhost"), cfg.RTMP.App)
	}
	plainURL := strings.TrimSuffix("http://"+displayHostPort(cfg.HTTP.Addr, "localhost"), ":80")
	httpURL := cfg.HTTP.PublicURL
	switch {
	case httpURL != "":
	case cfg.HTTP.TLSAddr != "":
		httpURL = strings.TrimSuffix("https://"+displayHostPort(cfg.HTTP.TLSAddr, "localhost"), ":443")
	default:
		httpURL = plainURL
	}
	httpURL = strings.TrimSuffix(httpURL, "/")
	fmt.Fprintf(w, "onair is running\n")
	fmt.Fprintf(w, "OBS server: %s\n", rtmpURL)
	if rtmpsURL != "" {
		fmt.Fprintf(w, "OBS server over TLS: %s\n", rtmpsURL)
	}
	if demoKey != "" {
		fmt.Fprintf(w, "stream key: %s\n", demoKey)
		fmt.Fprintf(w, "watch: %s/watch/demo\n", httpURL)
	} else {
		fmt.Fprintf(w, "watch: %s/\n", httpURL)
	}
	if cfg.HTTP.TLSAddr != "" && cfg.HTTP.Addr != "" {
		fmt.Fprintf(w, "plain http: %s redirects to https\n", plainURL)
	}
	if cfg.Metrics.Addr != "" {
		fmt.Fprintf(w, "metrics: http://%s/metrics\n", displayHostPort(cfg.Metrics.Addr, "localhost"))
	} else {
		fmt.Fprintf(w, "metrics: off\n")
	}
}

func displayHostPort(addr, fallbackHost string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = fallbackHost
	}
	return net.JoinHostPort(host, port)
}
