package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of every delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>", see Sign.
	SignatureHeader = "Onair-Signature"
	// EventHeader is the event's type, e.g. stream.started.
	EventHeader = "Onair-Event"
	// EventIDHeader is the event's id: the same for every delivery of one event, and
	// across retries; receivers use it to drop duplicates.
	EventIDHeader = "Onair-Event-Id"
	// DeliveryHeader is the delivery's id (one event sent to one webhook), as listed in
	// the delivery log.
	DeliveryHeader = "Onair-Delivery"
)

// DefaultTolerance is how far a signature's timestamp may be from the receiver's clock
// before Verify refuses it (a replayed request).
const DefaultTolerance = 5 * time.Minute

// ErrSignature: the signature header is missing, malformed, too old, or does not match.
var ErrSignature = errors.New("webhook signature invalid")

// Sign returns the SignatureHeader value for body sent at t:
//
//	t=<t in Unix seconds>,v1=<lowercase hex of HMAC-SHA256(key=secret, msg="<t>.<body>")>
//
// The key is the secret string's bytes as given (prefix included), the message the
// decimal timestamp, a period, and the raw request body.
func Sign(secret string, t time.Time, body []byte) string {
	ts := t.Unix()
	return "t=" + strconv.FormatInt(ts, 10) + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a SignatureHeader value against the raw body as received: the timestamp
// must be within tolerance of now (tolerance <= 0 skips that check) and one of the v1
// signatures must match, compared in constant time. Receivers should do the same (see
// the package documentation for other languages). It returns nil or an error wrapping
// ErrSignature.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var (
		ts     int64
		haveTS bool
		sigs   [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed header", ErrSignature)
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || haveTS {
				return fmt.Errorf("%w: malformed timestamp", ErrSignature)
			}
			ts, haveTS = n, true
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil {
				return fmt.Errorf("%w: malformed v1 signature", ErrSignature)
			}
			sigs = append(sigs, b)
		}
	}
	if !haveTS || len(sigs) == 0 {
		return fmt.Errorf("%w: no timestamp or no v1 signature", ErrSignature)
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w: timestamp %s away from now (tolerance %s)", ErrSignature, d.Round(time.Second), tolerance)
		}
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no matching signature", ErrSignature)
}
