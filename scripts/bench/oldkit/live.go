package oldkit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"
)

// copyBinary copies the executable src to dst and describes it.
func CopyBinary(src, dst string) (BinaryInfo, error) {
	in, err := os.Open(src)
	if err != nil {
		return BinaryInfo{}, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return BinaryInfo{}, err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return BinaryInfo{}, err
	}
	sum := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, sum), in); err != nil {
		out.Close()
		return BinaryInfo{}, fmt.Errorf("copy %s: %w", src, err)
	}
	info := BinaryInfo{Bytes: st.Size(), Modified: st.ModTime().UTC().Format(time.RFC3339), SHA256: hex.EncodeToString(sum.Sum(nil))}
	return info, out.Close()
}
