package storage

import (
	"mime"
	"strings"
)

// AttachmentDisposition is the Content-Disposition that makes a browser save a download
// under name. Non-ASCII names are encoded (RFC 2231) rather than passed raw into a header.
func AttachmentDisposition(name string) string {
	// Path separators and quotes have no business in a file name offered to a browser.
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' || r == '"' {
			return '_'
		}
		return r
	}, name)
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "attachment"
}
