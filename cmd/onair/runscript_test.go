package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// runSandbox is a copy of scripts/run.sh in a tree of its own where the programs it
// starts are stand-ins: scripts/tools.sh does nothing, the local database sleeps, curl
// says it is ready, and bin/onair writes the environment it was given to onair.env.
type runSandbox struct {
	root, fakeBin string
}

func newRunSandbox(t *testing.T) *runSandbox {
	t.Helper()
	script, err := os.ReadFile("../../scripts/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	s := &runSandbox{root: t.TempDir(), fakeBin: t.TempDir()}
	for path, body := range map[string]string{
		filepath.Join(s.root, "scripts/run.sh"):      string(script),
		filepath.Join(s.root, "scripts/tools.sh"):    "#!/bin/sh\nexit 0\n",
		filepath.Join(s.root, ".tools/bin/ferretdb"): "#!/bin/sh\nexec sleep 30\n",
		filepath.Join(s.root, "bin/onair"):           "#!/bin/sh\nenv > \"$(dirname \"$0\")/../onair.env\"\n",
		filepath.Join(s.fakeBin, "curl"):             "#!/bin/sh\nexit 0\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// run runs the script with only env (and a PATH that finds the stand-ins) and returns
// its combined output and error.
func (s *runSandbox) run(t *testing.T, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(s.root, "scripts/run.sh"))
	cmd.Env = append([]string{"PATH=" + s.fakeBin + ":" + os.Getenv("PATH"), "HOME=" + s.root,
		"ONAIR_DATA_DIR=" + filepath.Join(s.root, "data")}, env...)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// make run's own advice works: when the local database's port is taken, scripts/run.sh
// names what to set; onair's strict environment check accepts every variable it names,
// and following the advice hands onair an environment it starts with.
func TestRunScriptAdvice(t *testing.T) {
	s := newRunSandbox(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port

	out, err := s.run(t, "RUN_MONGO_PORT="+strconv.Itoa(port))
	if err == nil {
		t.Fatalf("run.sh went on with port %d taken:\n%s", port, out)
	}
	advice := regexp.MustCompile(`port (\d+) is taken; set (\w+) or (\w+)`).FindStringSubmatch(out)
	if advice == nil || advice[1] != strconv.Itoa(port) {
		t.Fatalf("run.sh with port %d taken says:\n%s", port, out)
	}
	for _, name := range advice[2:] {
		cfg := defaultConfig()
		if err := applyEnv(&cfg, []string{name + "=mongodb://127.0.0.1:1/"}); err != nil {
			t.Errorf("run.sh advises setting %s, which onair refuses: %v", name, err)
		}
	}

	// Follow the advice: another port for the local database.
	free := testenv.FreePort(t)
	out, err = s.run(t, advice[2]+"="+strconv.Itoa(free))
	if err != nil {
		t.Fatalf("run.sh with %s=%d: %v\n%s", advice[2], free, err, out)
	}
	b, err := os.ReadFile(filepath.Join(s.root, "onair.env"))
	if err != nil {
		t.Fatalf("onair was not started: %v\n%s", err, out)
	}
	env := strings.Split(strings.TrimSpace(string(b)), "\n")
	cfg, err := loadConfig("../../configs/onair.yaml", env)
	if err != nil {
		t.Fatalf("onair refuses the environment make run gives it: %v", err)
	}
	if want := "mongodb://127.0.0.1:" + strconv.Itoa(free) + "/"; !strings.HasPrefix(cfg.Mongo.URI, want) {
		t.Fatalf("onair's mongo.uri is %q, want the local server on %d", cfg.Mongo.URI, free)
	}
}

// Every ONAIR_* variable that scripts/run.sh reads or names is one of onair's keys: the
// script's own settings use another prefix.
func TestRunScriptVariables(t *testing.T) {
	b, err := os.ReadFile("../../scripts/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	keys := envKeys(&cfg)
	names := regexp.MustCompile(`\bONAIR_[A-Z0-9_]+\b`).FindAllString(string(b), -1)
	if len(names) == 0 {
		t.Fatal("run.sh names no ONAIR_ variable: is this the script?")
	}
	for _, name := range names {
		if _, ok := keys[name]; !ok {
			t.Errorf("run.sh names %s, which is not one of onair's keys (onair refuses unknown ONAIR_* variables)", name)
		}
	}
}
