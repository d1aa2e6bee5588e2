package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"onair/storage"
)

// EnsureBucket creates the bucket if it does not exist: for MinIO and development. In
// production the bucket is usually created by whoever owns the account.
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	if !errors.Is(classify(err), storage.ErrNotFound) {
		return fmt.Errorf("s3 check bucket %q: %w", s.bucket, err)
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}
	if s.region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(s.region)}
	}
	_, err = s.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("s3 create bucket %q: %w", s.bucket, err)
	}
	s.log.Info("created bucket", "bucket", s.bucket)
	return nil
}

// Expiration is a lifecycle rule deleting objects under a prefix after a while.
type Expiration struct {
	// Prefix (under the store's own) the rule applies to, e.g. storage.RecordingsPrefix.
	Prefix string
	// Days after creation an object is deleted. Set Days or Date.
	Days int
	// Date from which every object under Prefix is deleted (midnight UTC); a date in the
	// past takes effect at once.
	Date time.Time
	// AbortIncompleteAfterDays, when > 0, also aborts multipart uploads left that long.
	// It must comfortably exceed the longest broadcast plus the time to recover a crash.
	AbortIncompleteAfterDays int
}

// SetExpiration installs (or replaces) onair's lifecycle rule for e.Prefix, keeping the
// bucket's other rules: S3 has one lifecycle document per bucket, replaced as a whole.
func (s *Store) SetExpiration(ctx context.Context, e Expiration) error {
	full, err := s.fullPrefix(e.Prefix)
	if err != nil {
		return err
	}
	if (e.Days > 0) == !e.Date.IsZero() {
		return fmt.Errorf("s3 lifecycle for %q: set exactly one of Days and Date", e.Prefix)
	}
	rule := types.LifecycleRule{
		ID:         aws.String(ruleID(full)),
		Status:     types.ExpirationStatusEnabled,
		Filter:     &types.LifecycleRuleFilter{Prefix: aws.String(full)},
		Expiration: &types.LifecycleExpiration{},
	}
	if e.Days > 0 {
		rule.Expiration.Days = aws.Int32(int32(e.Days))
	} else {
		d := e.Date.UTC().Truncate(24 * time.Hour)
		rule.Expiration.Date = &d
	}
	if e.AbortIncompleteAfterDays > 0 {
		rule.AbortIncompleteMultipartUpload = &types.AbortIncompleteMultipartUpload{
			DaysAfterInitiation: aws.Int32(int32(e.AbortIncompleteAfterDays))}
	}

	rules, err := s.lifecycleRules(ctx)
	if err != nil {
		return err
	}
	kept := []types.LifecycleRule{rule}
	for _, r := range rules {
		if aws.ToString(r.ID) != aws.ToString(rule.ID) {
			kept = append(kept, r)
		}
	}
	_, err = s.client.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket: aws.String(s.bucket), LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: kept}})
	if err != nil {
		return fmt.Errorf("s3 put lifecycle rule for %q on bucket %q: %w", full, s.bucket, err)
	}
	s.log.Info("installed lifecycle rule", "bucket", s.bucket, "prefix", full, "days", e.Days)
	return nil
}

// lifecycleRules returns the bucket's lifecycle rules (none when it has no configuration).
func (s *Store) lifecycleRules(ctx context.Context) ([]types.LifecycleRule, error) {
	out, err := s.client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(s.bucket)})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchLifecycleConfiguration" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("s3 get lifecycle of bucket %q: %w", s.bucket, err)
	}
	return out.Rules, nil
}

// ruleID names onair's rule after its prefix, so installing it again replaces it.
func ruleID(prefix string) string {
	id := "onair-expire-" + strings.TrimSuffix(prefix, "/")
	if len(id) > 255 {
		id = id[:255]
	}
	return id
}
