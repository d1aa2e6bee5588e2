package storage

// Test hooks for the external tests of this package.

// SpoolDone is closed once the spool's uploader has stopped (after a "crash": its
// context cancelled).
func SpoolDone(s *Spool) <-chan struct{} { return s.done }

// SpoolDir is the spool's directory.
func SpoolDir(s *Spool) string { return s.dir }

// SpoolUploadID is the multipart upload the spool writes to ("" until created).
func SpoolUploadID(s *Spool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.man.UploadID
}
