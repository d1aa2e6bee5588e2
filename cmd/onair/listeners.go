package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"onair/web"
)

// metricsConfig is the metrics section: Prometheus' /metrics on a listener of its own, so
// that the public port never serves it.
type metricsConfig struct {
	Addr string `yaml:"addr"`
}

// listeners are onair's sockets. They are all opened before anything starts, so that a
// port in use stops onair at once, and so that the ports the system picked for port 0 are
// known to the URLs shown to streamers. Those that are off are nil.
type listeners struct {
	rtmp    net.Listener
	rtmps   net.Listener // rtmp.tls_addr
	http    net.Listener // http.addr: the site, or only a redirect to https when https is on
	https   net.Listener // http.tls_addr
	metrics net.Listener // metrics.addr
	certs   *certSource  // nil without TLS
}

// openListeners listens on every configured address, TLS ones wrapped with certs.
func openListeners(cfg config, certs *certSource) (*listeners, error) {
	l := &listeners{certs: certs}
	for _, s := range []struct {
		key, addr string
		ln        *net.Listener
		tls       func() *tls.Config
	}{
		{"rtmp.addr", cfg.RTMP.Addr, &l.rtmp, nil},
		{"rtmp.tls_addr", cfg.RTMP.TLSAddr, &l.rtmps, func() *tls.Config { return certs.rtmpsConfig() }},
		{"http.addr", cfg.HTTP.Addr, &l.http, nil},
		{"http.tls_addr", cfg.HTTP.TLSAddr, &l.https, func() *tls.Config { return certs.httpsConfig() }},
		{"metrics.addr", cfg.Metrics.Addr, &l.metrics, nil},
	} {
		if s.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("listen %s %s: %w", s.key, s.addr, err)
		}
		if s.tls != nil {
			// The handshake happens on the connection's first read or write, under the
			// deadlines of its server: rtmp.setup_timeout, http.read_header_timeout.
			ln = tls.NewListener(ln, s.tls())
		}
		*s.ln = ln
	}
	return l, nil
}

func (l *listeners) close() {
	for _, ln := range []net.Listener{l.rtmp, l.rtmps, l.http, l.https, l.metrics} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// resolve writes the addresses the listeners got into cfg: with port 0 the system picked
// the ports, and the URLs shown to streamers need them.
func (l *listeners) resolve(cfg *config) {
	for _, s := range []struct {
		ln   net.Listener
		addr *string
	}{{l.rtmp, &cfg.RTMP.Addr}, {l.rtmps, &cfg.RTMP.TLSAddr}, {l.http, &cfg.HTTP.Addr}, {l.https, &cfg.HTTP.TLSAddr}, {l.metrics, &cfg.Metrics.Addr}} {
		if s.ln != nil {
			*s.addr = s.ln.Addr().String()
		}
	}
}

// serve runs a part for each listener.
func (a *app) serve(runPart func(name string, f func(context.Context) error), l *listeners) {
	runPart("rtmp", func(ctx context.Context) error { return a.rtmp.Run(ctx, l.rtmp) })
	if l.rtmps != nil {
		// The same server as plain RTMP: its connection limit counts both.
		runPart("rtmps", func(ctx context.Context) error { return a.rtmp.Run(ctx, l.rtmps) })
	}
	limits := web.Limits{
		ReadHeaderTimeout: a.cfg.HTTP.ReadHeaderTimeout, ReadTimeout: a.cfg.HTTP.ReadTimeout,
		WriteTimeout: a.cfg.HTTP.WriteTimeout, IdleTimeout: a.cfg.HTTP.IdleTimeout, MaxHeaderBytes: a.cfg.HTTP.MaxHeaderBytes,
	}
	switch {
	case l.https != nil:
		runPart("https", func(ctx context.Context) error { return a.web.Run(ctx, l.https) })
		if l.http != nil {
			redirect := l.certs.plainHandler(a.httpsRedirect())
			runPart("http", func(ctx context.Context) error {
				return web.Serve(ctx, a.log.With("component", "web"), "http redirect to https", l.http, redirect, limits)
			})
		}
	default:
		runPart("http", func(ctx context.Context) error { return a.web.Run(ctx, l.http) })
	}
	if l.metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics.Handler())
		runPart("metrics", func(ctx context.Context) error {
			return web.Serve(ctx, a.log.With("component", "metrics"), "metrics", l.metrics, mux, limits)
		})
	}
}

func (a *app) httpsRedirect() httpsRedirect {
	_, port, _ := net.SplitHostPort(a.cfg.HTTP.TLSAddr)
	r := httpsRedirect{port: port}
	if a.cfg.HTTP.PublicURL != "" {
		r.publicURL, _ = url.Parse(a.cfg.HTTP.PublicURL) // validated with the config
	}
	return r
}
