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
	chunk := ChunkKey(k, 12)
	if chunk != "recordings/studio/01HZX/chunks/000012" {
		t.Fatalf("ChunkKey = %q", chunk)
	}
	if folder, n := ChunkOf(chunk); folder != "recordings/studio/01HZX/" || n != 12 {
		t.Fatalf("ChunkOf(%q) = %q, %d", chunk, folder, n)
	}
	for _, notChunk := range []string{k, "recordings/studio/01HZX/chunks/12", "other/x/chunks/000001", "recordings/a/chunks/000000"} {
		if folder, _ := ChunkOf(notChunk); folder != "" {
			t.Errorf("ChunkOf(%q) = %q, want none", notChunk, folder)
		}
	}
	if d := AttachmentDisposition(`a"b/c.mp4`); d != `attachment; filename=a_b_c.mp4` {
		t.Errorf("AttachmentDisposition = %s", d)
	}
}
