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

	rtmpLn, err := net.Listen("tcp", cfg.RTMP.Addr)
	if err != nil {
		return fmt.Errorf("listen rtmp.addr %s: %w", cfg.RTMP.Addr, err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		rtmpLn.Close()
		return fmt.Errorf("listen http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	// With port 0 the system picked the ports: the URLs shown to streamers need them.
	cfg.RTMP.Addr, cfg.HTTP.Addr = rtmpLn.Addr().String(), httpLn.Addr().String()
	a, err := newApp(ctx, cfg, log, keys)
	if err != nil {
		rtmpLn.Close()
		httpLn.Close()
		return err
	}
	printBanner(stdout, cfg, rtmpLn.Addr(), httpLn.Addr(), demoKey)
	return a.run(ctx, rtmpLn, httpLn)
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
// stdout, not the log: the key is shown to the operator who owns it and nowhere else.
func printBanner(w io.Writer, cfg config, rtmpAddr, httpAddr net.Addr, demoKey string) {
	rtmpURL := cfg.RTMP.PublicURL
	if rtmpURL == "" {
		rtmpURL = fmt.Sprintf("rtmp://%s/%s", displayHostPort(rtmpAddr, "localhost"), cfg.RTMP.App)
	}
	httpURL := cfg.HTTP.PublicURL
	if httpURL == "" {
		httpURL = "http://" + displayHostPort(httpAddr, "localhost")
	}
	httpURL = strings.TrimSuffix(httpURL, "/")
	fmt.Fprintf(w, "onair is running\n")
	fmt.Fprintf(w, "OBS server: %s\n", rtmpURL)
	if demoKey != "" {
		fmt.Fprintf(w, "stream key: %s\n", demoKey)
		fmt.Fprintf(w, "watch: %s/watch/demo\n", httpURL)
	} else {
		fmt.Fprintf(w, "watch: %s/\n", httpURL)
	}
}

func displayHostPort(a net.Addr, fallbackHost string) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = fallbackHost
	}
	return net.JoinHostPort(host, port)
}
