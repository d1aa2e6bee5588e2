package oldkit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// rigWrite saves res as <out>/<name>.json and, when the run had no errors, rewrites the
// bench:<name> section of the Markdown file.
func RigWrite(c RigFlags, res any, errs int, section string, logf func(string, ...any)) error {
	if err := os.MkdirAll(c.OutDir, 0o755); err != nil {
		return fmt.Errorf("bench %s: %w", c.Name, err)
	}
	jsonPath := filepath.Join(c.OutDir, c.Name+".json")
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("bench %s: %w", c.Name, err)
	}
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench %s: %w", c.Name, err)
	}
	logf("raw results: %s", jsonPath)
	switch {
	case errs > 0:
		return fmt.Errorf("bench %s: %d measurement(s) failed; %s left unchanged", c.Name, errs, c.markdown)
	case c.writeMD:
		if err := UpdateSection(c.markdown, c.Name, BenchmarksIntro, section); err != nil {
			return err
		}
		logf("wrote the bench:%s section of %s", c.Name, c.markdown)
	}
	return nil
}

// rigInput encodes the live benchmark's input unless it exists (see ensureInput), and
// returns its path and description.
func RigInput(ctx context.Context, root, outDir string) (string, InputInfo, error) {
	path := filepath.Join(outDir, "input-720p30.flv")
	encode, err := EnsureInput(ctx, path)
	if err != nil {
		return "", InputInfo{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", InputInfo{}, fmt.Errorf("input: %w", err)
	}
	defer f.Close()
	tags, err := ReadFLVTags(f)
	if err != nil {
		return "", InputInfo{}, fmt.Errorf("input %s: %w", path, err)
	}
	in := InputInfo{Encode: encode}
	if in.File, err = filepath.Rel(root, path); err != nil {
		in.File = path
	}
	if len(tags) > 1 {
		in.Seconds = float64(tags[len(tags)-1].Timestamp-tags[0].Timestamp) / 1000
	}
	for _, t := range tags {
		in.Bytes += int64(len(t.Data))
	}
	in.BitrateKbps = Ratio(float64(in.Bytes)*8/1000, in.Seconds)
	return path, in, nil
}
