package storage

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// RecordingsPrefix holds every recording, one folder per room and broadcast
// (recordings/<room>/<broadcast id>/<file>), so that retention (the janitor, a bucket
// lifecycle rule) and cleanup of a room or a broadcast are a matter of prefixes.
const RecordingsPrefix = "recordings/"

// maxKeyLen is S3's limit on a key's length in bytes.
const maxKeyLen = 1024

// RecordingPrefix is the folder of one broadcast's recording ("recordings/<room>/<id>/").
func RecordingPrefix(room, broadcastID string) (string, error) {
	if err := validSegment(room); err != nil {
		return "", fmt.Errorf("room %q: %w", room, err)
	}
	if err := validSegment(broadcastID); err != nil {
		return "", fmt.Errorf("broadcast id %q: %w", broadcastID, err)
	}
	return RecordingsPrefix + room + "/" + broadcastID + "/", nil
}

// RecordingKey is the key of a file of one broadcast's recording, e.g.
// RecordingKey("studio", "01J…", "video.mp4").
func RecordingKey(room, broadcastID, name string) (string, error) {
	p, err := RecordingPrefix(room, broadcastID)
	if err != nil {
		return "", err
	}
	if err := validSegment(name); err != nil {
		return "", fmt.Errorf("file name %q: %w", name, err)
	}
	return p + name, nil
}

// ChunkKey is the key of chunk n (from 1) of a recording being written: the recording's
// log reaches the store chunk by chunk, each readable at once, and the recording is
// assembled from them at the end. They sit in the recording's folder, so that whatever
// removes the folder removes them.
func ChunkKey(recording string, n int) string {
	return path.Dir(recording) + "/" + ChunksFolder + fmt.Sprintf("%06d", n)
}

// ChunksFolder holds a recording's chunks, in its folder.
const ChunksFolder = "chunks/"

// ChunkOf reads a chunk's key back: the recording's folder ("" when key is no chunk's)
// and the chunk's number.
func ChunkOf(key string) (folder string, n int) {
	dir, name := path.Split(key)
	if !strings.HasSuffix(dir, "/"+ChunksFolder) || !strings.HasPrefix(key, RecordingsPrefix) {
		return "", 0
	}
	if _, err := fmt.Sscanf(name, "%06d", &n); err != nil || n < 1 || fmt.Sprintf("%06d", n) != name {
		return "", 0
	}
	return strings.TrimSuffix(dir, ChunksFolder), n
}

// validSegment keeps room names, broadcast ids and file names to characters that mean the
// same thing in a URL, a file system and every S3 implementation.
func validSegment(s string) error {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return ErrInvalidKey
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.'
		if !ok {
			return ErrInvalidKey
		}
	}
	return nil
}

// ValidateKey accepts the keys both backends store the same way: non-empty UTF-8 of at
// most 1024 bytes, slash-separated segments that are neither empty, "." nor "..", and no
// backslash or control character. That rules out every path trick before a backend sees
// the key (the local backend still confines itself to its root).
func ValidateKey(key string) error {
	if key == "" || strings.HasSuffix(key, "/") {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	return validatePath(key)
}

// ValidatePrefix accepts "" (everything) and anything that could begin a valid key,
// including a trailing slash.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return validatePath(strings.TrimSuffix(prefix, "/"))
}

func validatePath(p string) error {
	if p == "" || len(p) > maxKeyLen || !utf8.ValidString(p) {
		return fmt.Errorf("%w: %q", ErrInvalidKey, p)
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return fmt.Errorf("%w: %q contains a control character or backslash", ErrInvalidKey, p)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q has an empty, \".\" or \"..\" segment", ErrInvalidKey, p)
		}
	}
	return nil
}
