package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"onair/scripts/testenv"
	"onair/storage"
	"onair/storage/storagetest"
)

// newStore returns a store on a fresh bucket of srv, under prefix.
func newStore(t *testing.T, srv *testenv.S3, prefix string) *Store {
	t.Helper()
	ctx := context.Background()
	st, err := New(ctx, Config{Endpoint: srv.Endpoint, Bucket: fmt.Sprintf("t%d", time.Now().UnixNano()),
		Prefix: prefix, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	// MinIO may still answer 503 for a moment after it reports ready.
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		err := st.EnsureBucket(ctx)
		return err == nil, fmt.Sprint(err)
	})
	if err := st.EnsureBucket(ctx); err != nil {
		t.Fatalf("second EnsureBucket: %v", err)
	}
	return st
}

func TestConformance(t *testing.T) {
	srv := testenv.StartS3(t)
	t.Run("NoPrefix", func(t *testing.T) { storagetest.Run(t, newStore(t, srv, "")) })
	t.Run("Prefix", func(t *testing.T) {
		st := newStore(t, srv, "/deploy-a/")
		storagetest.Run(t, st)
		// Everything really is under the prefix in the bucket.
		out, err := st.client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(st.bucket)})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out.Contents {
			if !strings.HasPrefix(aws.ToString(o.Key), "deploy-a/") {
				t.Fatalf("object %q outside the prefix", aws.ToString(o.Key))
			}
		}
	})
}

func TestLifecycleRule(t *testing.T) {
	srv := testenv.StartS3(t)
	st := newStore(t, srv, "onair")
	ctx := context.Background()
	for _, k := range []string{"recordings/r/1/video.mp4", "keep/x"} {
		if err := st.Put(ctx, k, bytes.NewReader([]byte("data")), 4, ""); err != nil {
			t.Fatal(err)
		}
	}
	// A rule of the operator's own survives onair installing its rule.
	if err := st.SetExpiration(ctx, Expiration{Prefix: "other/", Days: 90}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetExpiration(ctx, Expiration{Prefix: storage.RecordingsPrefix, Days: 30, AbortIncompleteAfterDays: 7}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetExpiration(ctx, Expiration{Prefix: storage.RecordingsPrefix, Days: 14, AbortIncompleteAfterDays: 7}); err != nil {
		t.Fatal(err)
	}
	out, err := st.client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(st.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range out.Rules {
		if r.Filter == nil || aws.ToString(r.Filter.Prefix) != "onair/recordings/" {
			continue
		}
		if found {
			t.Fatal("two rules for the recordings prefix")
		}
		found = true
		// (MinIO does not keep AbortIncompleteMultipartUpload; it drops old uploads itself.)
		if r.Status != "Enabled" || r.Expiration == nil || aws.ToInt32(r.Expiration.Days) != 14 {
			t.Fatalf("rule read back: %+v", r)
		}
	}
	if !found || len(out.Rules) != 2 {
		t.Fatalf("rules read back: %d, recordings rule found: %t", len(out.Rules), found)
	}

	// A date in the past expires everything under the prefix at once, and nothing else.
	if err := st.SetExpiration(ctx, Expiration{Prefix: storage.RecordingsPrefix, Date: time.Now().AddDate(0, 0, -2)}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		_, err := st.Head(ctx, "recordings/r/1/video.mp4")
		return errors.Is(err, storage.ErrNotFound), fmt.Sprintf("head expired recording: %v", err)
	})
	if _, err := st.Head(ctx, "keep/x"); err != nil {
		t.Fatalf("object outside the prefix: %v", err)
	}
	if err := st.SetExpiration(ctx, Expiration{Prefix: "x/", Days: 1, Date: time.Now()}); err == nil {
		t.Fatal("accepted both Days and Date")
	}
}

func TestUnavailableIsRetryable(t *testing.T) {
	srv := testenv.StartS3(t)
	st := newStore(t, srv, "")
	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := st.Head(ctx, "x")
	if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("head with the server down: %v, want ErrUnavailable", err)
	}
}

func TestConfigNeverShowsSecrets(t *testing.T) {
	cfg := Config{Bucket: "b", AccessKey: "AKIAEXAMPLE", SecretKey: "very-secret", SessionToken: "token-secret"}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "s3", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), logs.String()} {
		if strings.Contains(s, "very-secret") || strings.Contains(s, "token-secret") || strings.Contains(s, "AKIAEXAMPLE") {
			t.Fatalf("secret shown: %s", s)
		}
	}
	if _, err := New(context.Background(), Config{Bucket: "b", AccessKey: "only-the-id"}); err == nil {
		t.Fatal("accepted an access key without a secret")
	}
}

func TestObserveSeesEveryOperation(t *testing.T) {
	srv := testenv.StartS3(t)
	type call struct {
		op  string
		err error
	}
	var calls []call
	ctx := context.Background()
	st, err := New(ctx, Config{Endpoint: srv.Endpoint, Bucket: "observed", PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Observe: func(op string, took time.Duration, err error) {
			if took <= 0 {
				t.Errorf("%s took %s", op, took)
			}
			calls = append(calls, call{op, err})
		}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		err := st.EnsureBucket(ctx)
		return err == nil, fmt.Sprint(err)
	})
	calls = nil
	if err := st.Put(ctx, "a", bytes.NewReader([]byte("x")), 1, "text/plain"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Head(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	if len(calls) != 2 || calls[0].op != "PutObject" || calls[0].err != nil || calls[1].op != "HeadObject" || calls[1].err == nil {
		t.Fatalf("observed %+v, want PutObject (ok) then HeadObject (error)", calls)
	}
}
