package cdn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Write fills every placeholder of the example and wraps it into a configuration that
// keeps nginx's files in its directory.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	conf, err := Write(dir, "127.0.0.1:8081", "10.0.3.7:8080")
	if err != nil {
		t.Fatal(err)
	}
	site, err := os.ReadFile(filepath.Join(dir, "onair.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"listen 127.0.0.1:8081;", "server 10.0.3.7:8080;", "proxy_cache_path " + filepath.Join(dir, "cache") + " "} {
		if !strings.Contains(string(site), want) {
			t.Errorf("onair.conf lacks %q", want)
		}
	}
	main, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(main), "include "+filepath.Join(dir, "onair.conf")+";") || !strings.Contains(string(main), "pid "+dir+"/nginx.pid;") {
		t.Errorf("nginx.conf:\n%s", main)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp")); err != nil {
		t.Error(err)
	}
}
