// Package s3 is the storage.Store of onair on S3 and its look-alikes (AWS S3, MinIO,
// Cloudflare R2), through aws-sdk-go-v2.
package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"onair/storage"
)

// Config says where the bucket is and how to reach it. It carries secrets: log it only
// through its String or LogValue, which leave them out.
type Config struct {
	// Endpoint is the S3 API's base URL, e.g. http://127.0.0.1:9000 for MinIO or
	// https://<account>.r2.cloudflarestorage.com; empty for AWS (derived from Region).
	Endpoint string
	// Region defaults to us-east-1 (R2 takes "auto").
	Region string
	Bucket string
	// Prefix is prepended to every key ("onair/" stores recordings under
	// onair/recordings/...), so that one bucket can serve several deployments.
	Prefix string
	// PathStyle puts the bucket in the path instead of the host name (MinIO needs it).
	PathStyle bool
	// AccessKey and SecretKey (and SessionToken) are static credentials. Leave both empty
	// to use the standard AWS chain: environment, shared config, IMDS, IRSA.
	AccessKey, SecretKey, SessionToken string
	// MaxAttempts per request, the SDK's own retries (3 when 0); callers such as Spool
	// retry on top of them.
	MaxAttempts int
	Logger      *slog.Logger
	// Observe, when set, is told of every S3 operation (its name, how long it took with
	// the SDK's retries, and its error), for metrics.
	Observe func(op string, took time.Duration, err error)
}

// String describes the config without its secrets.
func (c Config) String() string {
	return fmt.Sprintf("s3(endpoint=%q region=%q bucket=%q prefix=%q path_style=%t credentials=%s)",
		c.Endpoint, c.Region, c.Bucket, c.Prefix, c.PathStyle, c.credentialSource())
}

// GoString keeps %#v from printing the secrets.
func (c Config) GoString() string { return c.String() }

// LogValue keeps slog from printing the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("endpoint", c.Endpoint), slog.String("region", c.Region),
		slog.String("bucket", c.Bucket), slog.String("prefix", c.Prefix),
		slog.Bool("path_style", c.PathStyle), slog.String("credentials", c.credentialSource()))
}

func (c Config) credentialSource() string {
	if c.AccessKey != "" || c.SecretKey != "" {
		return "static"
	}
	return "aws-default-chain"
}

// Store is a storage.Store on one bucket, under one prefix.
type Store struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
	prefix  string
	region  string
	log     *slog.Logger
}

var _ storage.Store = (*Store)(nil)

// New builds a Store; it does not contact the bucket (see EnsureBucket).
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: bucket is required")
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return nil, errors.New("s3: set both access key and secret key, or neither to use the AWS credential chain")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := storage.ValidatePrefix(prefix); err != nil {
			return nil, fmt.Errorf("s3: prefix: %w", err)
		}
		prefix += "/"
	}

	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = 10 * time.Second }).
		WithTransportOptions(func(t *http.Transport) { t.ResponseHeaderTimeout = time.Minute }).
		// A connection that delivers nothing for a minute is dead, whatever the operation.
		WithReadTimeout(time.Minute)
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.Region),
		config.WithHTTPClient(httpClient),
		// MinIO and R2 reject or mishandle the SDK's default CRC checksums.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(cfg.MaxAttempts))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS config: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		if cfg.Observe != nil {
			o.APIOptions = append(o.APIOptions, observeMiddleware(cfg.Observe))
		}
	})
	cfg.Logger.Debug("s3 store configured", "config", cfg)
	return &Store{
		client:  client,
		presign: s3.NewPresignClient(client),
		bucket:  cfg.Bucket,
		prefix:  prefix,
		region:  cfg.Region,
		log:     cfg.Logger,
	}, nil
}

// Client is the underlying SDK client, for what the interface does not cover.
func (s *Store) Client() *s3.Client { return s.client }

// Bucket is the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// full maps a caller's key to the bucket's key under the prefix.
func (s *Store) full(key string) (string, error) {
	if err := storage.ValidateKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

func (s *Store) fullPrefix(prefix string) (string, error) {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return "", err
	}
	return s.prefix + prefix, nil
}

// short maps a bucket key back to the caller's key.
func (s *Store) short(key string) string { return strings.TrimPrefix(key, s.prefix) }
