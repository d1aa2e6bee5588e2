package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// On disk, a spool is one directory per object under the spool root:
//
//	<root>/<sha256(key)[:16] hex>/
//	    manifest.json     what recovery needs: key, upload id, part size, parts uploaded
//	    part-00003        bytes of part 3, not yet uploaded (full: PartSize bytes)
//	    part-00004        bytes of part 4, the one being appended to
//
// A chunk file holds exactly the bytes of one future part and is deleted once the store
// has that part and the manifest says so, which keeps disk use to what is pending.
const (
	manifestName    = "manifest.json"
	manifestVersion = 1
	chunkPrefix     = "part-"
)

// manifest is the durable state of a spool, rewritten atomically (temp file, fsync, rename,
// fsync of the directory) whenever it changes.
type manifest struct {
	Version     int       `json:"version"`
	Key         string    `json:"key"`
	ContentType string    `json:"contentType"`
	PartSize    int64     `json:"partSize"`
	Created     time.Time `json:"created"`
	// UploadID is empty until the store accepted CreateUpload (it may be down at start).
	UploadID string `json:"uploadId,omitempty"`
	// Synced is how many bytes the last Sync made durable. The writer syncs at fragment
	// boundaries, so it is where recovery cuts when no truncate callback is given, and no
	// part is uploaded before its bytes are synced.
	Synced int64          `json:"synced"`
	Parts  []manifestPart `json:"parts"`
	// Completing is set once every part is uploaded, just before CompleteUpload: if the
	// upload is then gone, recovery checks whether the object is there instead.
	Completing bool `json:"completing,omitempty"`
}

type manifestPart struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
	Size   int64  `json:"size"`
	// Offset is where the part starts in the object.
	Offset int64 `json:"offset"`
}

func (m *manifest) uploadedBytes() int64 {
	var n int64
	for _, p := range m.Parts {
		n += p.Size
	}
	return n
}

func (m *manifest) storeParts() []Part {
	parts := make([]Part, len(m.Parts))
	for i, p := range m.Parts {
		parts[i] = Part{Number: p.Number, ETag: p.ETag, Size: p.Size}
	}
	return parts
}

// spoolDirName gives each key its own directory, so that a second spool for a key that
// still has one (a crash not yet recovered) is refused instead of mixing the two.
func spoolDirName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

func chunkPath(dir string, n int) string {
	return filepath.Join(dir, fmt.Sprintf("%s%05d", chunkPrefix, n))
}

func readManifest(dir string) (*manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse spool manifest in %s: %w", dir, err)
	}
	if m.Version != manifestVersion || m.Key == "" || m.PartSize < MinPartSize {
		return nil, fmt.Errorf("spool manifest in %s: unsupported version %d or missing fields", dir, m.Version)
	}
	return &m, nil
}

func writeManifest(dir string, m *manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode spool manifest for %q: %w", m.Key, err)
	}
	return writeFileAtomic(dir, manifestName, b)
}

// writeFileAtomic leaves either the old or the new content under name, never a mix, even
// across a power cut.
func writeFileAtomic(dir, name string, b []byte) error {
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return syncDir(dir)
}

// syncDir makes a directory's entries (files created, renamed, removed) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// chunkSizes returns the size of every chunk file in a spool directory by part number.
func chunkSizes(dir string) (map[int]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list spool %s: %w", dir, err)
	}
	sizes := map[int]int64{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, chunkPrefix) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(name, chunkPrefix))
		if err != nil || n < 1 {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", filepath.Join(dir, name), err)
		}
		sizes[n] = info.Size()
	}
	return sizes, nil
}
