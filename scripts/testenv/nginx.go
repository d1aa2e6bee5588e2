package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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

// cdnMain wraps the example, which is written for Debian's conf.d (inside the http block),
// into a whole configuration that runs as a test's process: in the foreground, with its
// pid file and temporary files in the test's directory instead of /var and /run.
const cdnMain = `daemon off;
master_process on;
worker_processes 1;
%[2]s
error_log stderr warn;
pid %[1]s/nginx.pid;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    include %[1]s/onair.conf;
}
`

var placeholderRE = regexp.MustCompile(`@[A-Z_]+@`)

// StartCDN starts nginx with configs/cdn/nginx.conf on a free loopback port, proxying to
// origin (host:port) with a cache of its own, and waits until it accepts connections.
func StartCDN(t testing.TB, origin string) *CDN {
	t.Helper()
	bin := nginxBinary(t)
	example := filepath.Join(RepoRoot(t), "configs", "cdn", "nginx.conf")
	tmpl, err := os.ReadFile(example)
	if err != nil {
		t.Fatalf("read the CDN example: %v", err)
	}
	dir := t.TempDir()
	for _, d := range []string{"cache", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := FreePort(t)
	listen := "127.0.0.1:" + strconv.Itoa(port)
	conf := strings.NewReplacer(
		"@LISTEN@", listen,
		"@ORIGIN@", origin,
		"@CACHE_DIR@", filepath.Join(dir, "cache"),
	).Replace(string(tmpl))
	if left := placeholderRE.FindString(conf); left != "" {
		t.Fatalf("%s has a placeholder StartCDN does not fill: %s", example, left)
	}
	if err := os.WriteFile(filepath.Join(dir, "onair.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// As root, nginx's workers would switch to an unprivileged user that cannot enter the
	// test's private temporary directory; keep them as root (a throwaway loopback instance).
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	main := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(main, fmt.Appendf(nil, cdnMain, dir, user), 0o644); err != nil {
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
