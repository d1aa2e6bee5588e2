package local

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"onair/storage"
)

// Presigned URLs: <BaseURL><PathPrefix><key>?exp=<unix seconds>[&dl=<name>|&ct=<type>]&sig=<hex>
// where sig is HMAC-SHA256 over the method, key, expiry and dl or ct, so none of them can
// be changed without the secret.

// PresignGet returns a URL onair serves (Handler) for GET and HEAD, Range included.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration, downloadName string) (string, error) {
	u, _, _, err := s.presign("GET", key, ttl, "dl", downloadName)
	return u, err
}

// PresignPut returns a URL onair accepts one PUT of the object on; the request must carry
// exactly contentType.
func (s *Store) PresignPut(ctx context.Context, key string, ttl time.Duration, contentType string) (string, error) {
	u, sig, exp, err := s.presign("PUT", key, ttl, "ct", contentType)
	if err != nil {
		return "", err
	}
	if err := s.puts.add(sig, exp, s.cfg.Now().Unix()); err != nil {
		return "", fmt.Errorf("local presign PUT %q: %w", key, err)
	}
	return u, nil
}

// PresignPart returns a URL onair accepts PUTs of part n of an upload on, each body of
// exactly size bytes. The signature binds the key, the upload, the part number and the
// size, so the URL writes that part and nothing else; it may be used again until it
// expires (a browser retrying a part), which only replaces the same part.
func (s *Store) PresignPart(ctx context.Context, key, uploadID string, n int, size int64, ttl time.Duration) (string, error) {
	if _, err := s.findUpload("presign part", key, uploadID); err != nil {
		return "", err
	}
	if n < 1 || n > storage.MaxParts || size <= 0 || size > s.cfg.MaxPutSize {
		return "", fmt.Errorf("local presign part %d of %q: part number outside 1..%d or size %d outside 1..%d",
			n, key, storage.MaxParts, size, s.cfg.MaxPutSize)
	}
	u, _, _, err := s.presign(methodPutPart, key, ttl, "part", partClaim(uploadID, n, size))
	return u, err
}

// methodPutPart signs part URLs apart from whole-object PUTs, so that neither passes for
// the other.
const methodPutPart = "PUT-PART"

// partClaim is what a part URL signs besides key and expiry: upload id, number and size.
func partClaim(uploadID string, n int, size int64) string {
	return uploadID + "." + strconv.Itoa(n) + "." + strconv.FormatInt(size, 10)
}

// parsePartClaim reads partClaim back.
func parsePartClaim(c string) (uploadID string, n int, size int64, ok bool) {
	f := strings.Split(c, ".")
	if len(f) != 3 {
		return "", 0, 0, false
	}
	n, err1 := strconv.Atoi(f[1])
	size, err2 := strconv.ParseInt(f[2], 10, 64)
	return f[0], n, size, err1 == nil && err2 == nil
}

// presign returns the URL, its signature and its expiry (unix seconds).
func (s *Store) presign(method, key string, ttl time.Duration, extraName, extra string) (u, sig string, exp int64, err error) {
	if err := storage.ValidateKey(key); err != nil {
		return "", "", 0, err
	}
	if s.cfg.Secret == nil {
		return "", "", 0, fmt.Errorf("local presign %q: no secret configured", key)
	}
	if ttl <= 0 || ttl > storage.MaxPresignTTL {
		return "", "", 0, fmt.Errorf("local presign %q: validity %s outside (0, %s]", key, ttl, storage.MaxPresignTTL)
	}
	exp = s.cfg.Now().Add(ttl).Unix()
	sig = s.sign(method, key, exp, extra)
	q := url.Values{}
	q.Set("exp", strconv.FormatInt(exp, 10))
	if extra != "" {
		q.Set(extraName, extra)
	}
	q.Set("sig", sig)
	return s.cfg.BaseURL + s.cfg.PathPrefix + escapeKey(key) + "?" + q.Encode(), sig, exp, nil
}

// sign computes the signature. Every field is length-prefixed so that no two different
// requests can share one by moving bytes between fields.
func (s *Store) sign(method, key string, exp int64, extra string) string {
	m := hmac.New(sha256.New, s.cfg.Secret)
	for _, f := range []string{method, key, strconv.FormatInt(exp, 10), extra} {
		fmt.Fprintf(m, "%d:%s", len(f), f)
	}
	return hex.EncodeToString(m.Sum(nil))
}

var errBadSignature = errors.New("signature is missing, wrong or expired")

// verify checks a presigned request's query for method on key and returns the signed
// extra value (download name or content type).
func (s *Store) verify(method, key string, q url.Values, extraName string) (string, error) {
	if s.cfg.Secret == nil {
		return "", errBadSignature
	}
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	if err != nil {
		return "", errBadSignature
	}
	extra := q.Get(extraName)
	got, err := hex.DecodeString(q.Get("sig"))
	if err != nil {
		return "", errBadSignature
	}
	want, _ := hex.DecodeString(s.sign(method, key, exp, extra))
	if !hmac.Equal(got, want) || s.cfg.Now().Unix() > exp {
		return "", errBadSignature
	}
	return extra, nil
}

// escapeKey escapes each segment of a key for a URL path, keeping the slashes.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}
