package testenv

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"onair/configs/cdn"
)

// CDN is Debian's nginx running configs/cdn/nginx.conf, the caching proxy example that
// operators put in front of onair's HLS routes.
type CDN struct {
	*Server
	// URL is the proxy's base URL, e.g. http://127.0.0.1:41236.
	URL string
}

// nginxBinary finds nginx. It is a system package (scripts/deps.sh installs it, as make
// test does), so a missing one is a failure, never a skip. Debian puts it in /usr/sbin,
// which is not on every user's PATH.
func nginxBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Fatal("nginx is required: install Debian's nginx package (scripts/deps.sh does, as make test does)")
	return ""
}

// StartCDN starts nginx with configs/cdn/nginx.conf on a free loopback port, proxying to
// origin (host:port) with a cache of its own, and waits until it accepts connections.
func StartCDN(t testing.TB, origin string) *CDN {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	port := FreePort(t)
	listen := "127.0.0.1:" + strconv.Itoa(port)
	main, err := cdn.Write(dir, listen, origin)
	if err != nil {
		t.Fatal(err)
	}
	// -e: nginx opens its compiled-in error log (under /var/log) before reading -c.
	s := startServer(t, bin, []string{"-p", dir, "-c", main, "-e", "stderr"}, nil)
	// Runs before startServer's cleanup: SIGTERM to the master alone, which stops its
	// workers and waits for them. The process group's SIGKILL would leave them to init.
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
		}
	})
	c := &CDN{Server: s, URL: "http://" + listen}
	Eventually(t, 10*time.Second, func() (bool, string) {
		select {
		case <-s.done:
			t.Fatalf("nginx exited at start:\n%s", s.logs.String())
		default:
		}
		conn, err := net.DialTimeout("tcp", listen, time.Second)
		if err != nil {
			return false, "nginx: " + err.Error()
		}
		conn.Close()
		return true, ""
	})
	return c
}
