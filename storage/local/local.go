// Package local is the storage.Store of onair in a local directory: the embedded default of
// `make run`. Presigned URLs point back at onair itself, which serves them with Handler.
//
// Keys map to paths, so one key cannot be both an object and a folder ("a" and "a/b"); S3
// allows it, onair's key layout never needs it.
//
// Layout under the root (every access goes through os.Root, so no key, symlink or upload
// id can reach outside it):
//
//	objects/<key>              object bytes
//	meta/<key>                 JSON: content type and ETag
//	uploads/<id>/upload.json   a multipart upload in progress: key, content type, start
//	uploads/<id>/part-00001    its parts
//	tmp/                       files being written, renamed into place when complete
package local

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"onair/storage"
)

const (
	objectsDir = "objects"
	metaDir    = "meta"
	uploadsDir = "uploads"
	tmpDir     = "tmp"
)

// Config configures New.
type Config struct {
	// Root is the directory holding everything; created if missing.
	Root string
	// BaseURL is how browsers reach onair, e.g. http://localhost:8080: presigned URLs are
	// BaseURL + PathPrefix + key (root-relative when BaseURL is empty).
	BaseURL string
	// PathPrefix is where the web server mounts Handler; "/storage/" when empty.
	PathPrefix string
	// Secret signs presigned URLs (HMAC-SHA256); at least 32 bytes. Keep it stable across
	// restarts, or URLs handed out before a restart stop working.
	Secret []byte
	// MaxPutSize caps a presigned PUT's body; 5 GiB when 0, like S3's single PUT.
	MaxPutSize int64
	Logger     *slog.Logger
	// Now is the clock for URL expiry (time.Now when nil).
	Now func() time.Time
}

// Store is a storage.Store in a directory.
type Store struct {
	cfg  Config
	root *os.Root
	log  *slog.Logger
	puts pendingPuts
}

var _ storage.Store = (*Store)(nil)

// New opens (creating if needed) the directory. Close releases it.
func New(cfg Config) (*Store, error) {
	if cfg.Root == "" {
		return nil, errors.New("local storage: Root is required")
	}
	if cfg.Secret != nil && len(cfg.Secret) < 32 {
		return nil, errors.New("local storage: Secret must be at least 32 bytes")
	}
	if cfg.PathPrefix == "" {
		cfg.PathPrefix = "/storage/"
	}
	if !strings.HasPrefix(cfg.PathPrefix, "/") || !strings.HasSuffix(cfg.PathPrefix, "/") {
		return nil, fmt.Errorf("local storage: PathPrefix %q must start and end with /", cfg.PathPrefix)
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.MaxPutSize <= 0 {
		cfg.MaxPutSize = 5 << 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, d := range []string{objectsDir, metaDir, uploadsDir, tmpDir} {
		if err := os.MkdirAll(cfg.Root+"/"+d, 0o750); err != nil {
			return nil, fmt.Errorf("local storage: %w", err)
		}
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("local storage: %w", err)
	}
	// Files left in tmp/ were being written when onair stopped: never visible, never needed.
	if entries, err := fs.ReadDir(root.FS(), tmpDir); err == nil {
		for _, e := range entries {
			_ = root.RemoveAll(tmpDir + "/" + e.Name())
		}
	}
	return &Store{cfg: cfg, root: root, log: cfg.Logger}, nil
}

// Close releases the directory.
func (s *Store) Close() error { return s.root.Close() }

// meta is what the file system does not keep about an object.
type meta struct {
	ContentType string `json:"contentType,omitempty"`
	ETag        string `json:"etag,omitempty"`
}

func objectName(key string) string { return objectsDir + "/" + key }
func metaName(key string) string   { return metaDir + "/" + key }

// Put stores an object, replacing any with the same key at once (rename).
func (s *Store) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	_, err := s.putFrom(ctx, key, body, size, contentType)
	return err
}

// putFrom writes r (exactly size bytes, or any length when size < 0) to key.
func (s *Store) putFrom(ctx context.Context, key string, r io.Reader, size int64, contentType string) (string, error) {
	tmp, f, err := s.tempFile()
	if err != nil {
		return "", fmt.Errorf("local put %q: %w", key, err)
	}
	defer s.root.Remove(tmp) // a no-op once renamed
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("body has %d bytes, %d announced", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("local put %q: %w", key, err)
	}
	etag := hex.EncodeToString(h.Sum(nil))
	if err := s.install(key, tmp, meta{ContentType: contentType, ETag: etag}); err != nil {
		return "", err
	}
	return etag, nil
}

// install moves a finished temporary file into place as key, metadata first.
func (s *Store) install(key, tmp string, m meta) error {
	if err := s.writeMeta(key, m); err != nil {
		return fmt.Errorf("local put %q: %w", key, err)
	}
	if err := s.root.MkdirAll(path.Dir(objectName(key)), 0o750); err != nil {
		return fmt.Errorf("local put %q: %w", key, err)
	}
	if err := s.root.Rename(tmp, objectName(key)); err != nil {
		return fmt.Errorf("local put %q: %w", key, err)
	}
	// The rename is only durable once the folder is synced: a recording whose spool is
	// deleted next must not vanish in a power cut.
	if d, err := s.root.Open(path.Dir(objectName(key))); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("local put %q: sync folder: %w", key, err)
		}
	}
	return nil
}

func (s *Store) writeMeta(key string, m meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp, f, err := s.tempFile()
	if err != nil {
		return err
	}
	defer s.root.Remove(tmp)
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.MkdirAll(path.Dir(metaName(key)), 0o750)
	}
	if err == nil {
		err = s.root.Rename(tmp, metaName(key))
	}
	return err
}

func (s *Store) readMeta(key string) meta {
	var m meta
	if b, err := s.root.ReadFile(metaName(key)); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	if m.ContentType == "" {
		m.ContentType = mime.TypeByExtension(path.Ext(key))
	}
	if m.ContentType == "" {
		m.ContentType = "application/octet-stream"
	}
	return m
}

func (s *Store) tempFile() (string, *os.File, error) {
	name := tmpDir + "/" + randomID()
	f, err := s.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	return name, f, err
}

// Get reads a range of an object (length < 0: to the end).
func (s *Store) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, storage.Object, error) {
	f, obj, err := s.open(ctx, key)
	if err != nil {
		return nil, obj, err
	}
	if offset < 0 || offset > 0 && offset >= obj.Size {
		f.Close()
		return nil, obj, fmt.Errorf("local get %q: offset %d, size %d: %w", key, offset, obj.Size, storage.ErrInvalidRange)
	}
	if length < 0 || offset+length > obj.Size {
		length = obj.Size - offset
	}
	return readCloser{io.NewSectionReader(f, offset, length), f}, obj, nil
}

// open opens an object's file with its metadata.
func (s *Store) open(ctx context.Context, key string) (*os.File, storage.Object, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, storage.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, storage.Object{}, err
	}
	f, err := s.root.Open(objectName(key))
	if err != nil {
		return nil, storage.Object{}, mapErr("get", key, err)
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, storage.Object{}, fmt.Errorf("local get %q: %w", key, storage.ErrNotFound)
	}
	m := s.readMeta(key)
	return f, storage.Object{Key: key, Size: info.Size(), LastModified: info.ModTime(),
		ContentType: m.ContentType, ETag: m.ETag}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Head returns an object's metadata.
func (s *Store) Head(ctx context.Context, key string) (storage.Object, error) {
	f, obj, err := s.open(ctx, key)
	if err != nil {
		return obj, err
	}
	f.Close()
	return obj, nil
}

// List calls fn for every object under prefix, in key order (ContentType left empty, as S3
// does).
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Object) error) error {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return err
	}
	// Walk only the deepest folder the prefix names.
	base := objectsDir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		base += "/" + prefix[:i]
	}
	var objs []storage.Object
	err := fs.WalkDir(s.root.FS(), base, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		key := strings.TrimPrefix(name, objectsDir+"/")
		if d.IsDir() {
			// Skip folders that cannot hold a matching key.
			if name != base && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // deleted meanwhile
		}
		objs = append(objs, storage.Object{Key: key, Size: info.Size(), LastModified: info.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("local list %q: %w", prefix, err)
	}
	// S3 orders by key bytes; a directory walk does not ("a/b" before "a.b").
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes an object and the folders it leaves empty.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.root.Remove(objectName(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local delete %q: %w", key, err)
	}
	_ = s.root.Remove(metaName(key))
	s.pruneDirs(path.Dir(objectName(key)), objectsDir)
	s.pruneDirs(path.Dir(metaName(key)), metaDir)
	return nil
}

// pruneDirs removes empty folders from dir up to (not including) top.
func (s *Store) pruneDirs(dir, top string) {
	for dir != top && strings.HasPrefix(dir, top+"/") {
		if err := s.root.Remove(dir); err != nil {
			return // not empty, or gone
		}
		dir = path.Dir(dir)
	}
}

// DeletePrefix removes every object under prefix.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	if prefix == "" {
		return fmt.Errorf("local delete prefix: refusing to delete everything: %w", storage.ErrInvalidKey)
	}
	var keys []string
	if err := s.List(ctx, prefix, func(o storage.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

func mapErr(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local %s %q: %w", op, key, storage.ErrNotFound)
	}
	return fmt.Errorf("local %s %q: %w", op, key, err)
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
