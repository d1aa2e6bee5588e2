// Package cdn renders the CDN example, nginx.conf, into a whole nginx configuration that
// runs as a child process: the end-to-end tests (scripts/testenv) and the benchmark
// (scripts/bench) put viewers behind the very file operators copy.
package cdn

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

//go:embed nginx.conf
var example string

// main wraps the example, which is written for Debian's conf.d (inside the http block),
// so that nginx runs in the foreground with its pid file and temporary files in one
// directory instead of /var and /run. Enough connections for hundreds of LL-HLS players,
// each holding a blocking playlist request and a part request open.
const main = `daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
%[2]s
error_log stderr warn;
pid %[1]s/nginx.pid;

events {
    worker_connections 4096;
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

// Write renders the example into dir, listening on listen (host:port) and proxying to
// origin (host:port) with a cache under dir, and returns the path of the main
// configuration to start nginx with: nginx -p dir -c <path> -e stderr.
func Write(dir, listen, origin string) (string, error) {
	for _, d := range []string{"cache", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", fmt.Errorf("cdn: %w", err)
		}
	}
	site := strings.NewReplacer("@LISTEN@", listen, "@ORIGIN@", origin,
		"@CACHE_DIR@", filepath.Join(dir, "cache")).Replace(example)
	if left := placeholderRE.FindString(site); left != "" {
		return "", fmt.Errorf("cdn: configs/cdn/nginx.conf has a placeholder Write does not fill: %s", left)
	}
	if err := os.WriteFile(filepath.Join(dir, "onair.conf"), []byte(site), 0o644); err != nil {
		return "", fmt.Errorf("cdn: %w", err)
	}
	// As root, nginx's workers would switch to an unprivileged user that cannot enter a
	// private temporary directory; keep them as root (a throwaway loopback instance).
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, main, dir, user), 0o644); err != nil {
		return "", fmt.Errorf("cdn: %w", err)
	}
	return conf, nil
}
