package storage

import (
	"errors"
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	for _, k := range []string{"a", "recordings/r/b/video.mp4", "a/b.c/d", "ünïcode/ok", "a..b"} {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q): %v", k, err)
		}
	}
	for _, k := range []string{"", "/a", "a/", "a//b", "./a", "a/./b", "a/../b", "..", `a\b`, "a\x00b",
		"a\tb", "\xff", strings.Repeat("a", 1025)} {
		if err := ValidateKey(k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
	for _, p := range []string{"", "recordings/", "recordings/r", "a/b/"} {
		if err := ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q): %v", p, err)
		}
	}
	for _, p := range []string{"/", "../", "a//", "a/../"} {
		if err := ValidatePrefix(p); err == nil {
			t.Errorf("ValidatePrefix(%q) accepted", p)
		}
	}
	k, err := RecordingKey("studio", "01HZX", "video.mp4")
	if err != nil || k != "recordings/studio/01HZX/video.mp4" {
		t.Fatalf("RecordingKey = %q, %v", k, err)
	}
	for _, bad := range [][3]string{{"..", "b", "f"}, {"r", "a/b", "f"}, {"r", "b", ""}, {"r oom", "b", "f"}} {
		if _, err := RecordingKey(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("RecordingKey%q accepted", bad)
		}
	}
	if d := AttachmentDisposition(`a"b/c.mp4`); d != `attachment; filename=a_b_c.mp4` {
		t.Errorf("AttachmentDisposition = %s", d)
	}
}
