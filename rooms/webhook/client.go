package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// maxResponse is how much of a receiver's answer is read; a snippet of it goes into the
// delivery log when the answer is not 2xx.
const (
	maxResponse = 4 << 10
	maxSnippet  = 200
	maxURL      = 2048
)

// errPrivateAddress: the address is loopback, private, link-local or otherwise not on the
// public internet, and Config.AllowPrivate is off.
var errPrivateAddress = errors.New("address is not public (loopback, private or link-local); refused")

// nonPublic are prefixes that are not reachable on the public internet besides what
// netip's predicates cover (shared address space, benchmarking, reserved, NAT64, docs).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// publicAddr reports whether ip is an address on the public internet.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// newClient is the outbound HTTP client: no proxy from the environment, timeouts on every
// phase, redirects followed only on the same host (at most 3), and, unless allowPrivate,
// connections refused to non-public addresses at dial time (after DNS resolution, so a
// name that resolves to 127.0.0.1 is refused as well).
func newClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil || !publicAddr(ip) {
				return fmt.Errorf("dial %s: %w", host, errPrivateAddress)
			}
			return nil
		}
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    min(timeout, 10*time.Second),
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("more than 3 redirects")
			}
			if req.URL.Host != via[0].URL.Host || (req.URL.Scheme != "http" && req.URL.Scheme != "https") {
				return fmt.Errorf("redirect to another host (%s) refused: update the webhook's URL", req.URL.Host)
			}
			return nil
		},
	}
}

// attemptResult is the outcome of one POST.
type attemptResult struct {
	ok         bool
	status     int           // HTTP status, 0 when there was no answer
	err        string        // why it failed, fit for the delivery log (no URL, no secret)
	retryAfter time.Duration // the receiver's Retry-After, if any
}

// post sends body to u and reads at most maxResponse bytes of the answer.
func post(ctx context.Context, c *http.Client, u string, header http.Header, body []byte) attemptResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(string(body)))
	if err != nil {
		return attemptResult{err: "bad request: " + describe(err)}
	}
	req.Header = header
	resp, err := c.Do(req)
	if err != nil {
		return attemptResult{err: describe(err)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return attemptResult{ok: true, status: resp.StatusCode}
	}
	r := attemptResult{status: resp.StatusCode, err: "HTTP " + strconv.Itoa(resp.StatusCode)}
	if s := snippet(b); s != "" {
		r.err += ": " + s
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if n, err := strconv.Atoi(ra); err == nil && n > 0 {
			r.retryAfter = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			r.retryAfter = time.Until(t)
		}
	}
	return r
}

// describe turns a client error into words without the URL (which may hold a token, as
// Slack's incoming-webhook URLs do).
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return snippet([]byte(err.Error()))
}

// snippet is a short, printable, valid UTF-8 excerpt.
func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > maxSnippet {
		s = string([]rune(s)[:maxSnippet]) + "…"
	}
	return s
}

// checkURL vets a webhook URL: http or https, a host, no credentials, not too long and,
// unless allowPrivate, a host that resolves only to public addresses.
func checkURL(ctx context.Context, raw string, allowPrivate bool) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, invalid("url", "is required")
	}
	if len(raw) > maxURL {
		return nil, invalid("url", "must be at most %d characters", maxURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, invalid("url", "must be an http:// or https:// URL")
	}
	if u.User != nil {
		return nil, invalid("url", "must not contain a user name or password")
	}
	if allowPrivate {
		return u, nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if !publicAddr(ip) {
			return nil, invalid("url", "points to a loopback, private or link-local address")
		}
		return u, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return nil, invalid("url", "host %q does not resolve", host)
	}
	for _, a := range addrs {
		if !publicAddr(a) {
			return nil, invalid("url", "host %q resolves to a loopback, private or link-local address", host)
		}
	}
	return u, nil
}
