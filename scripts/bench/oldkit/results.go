package oldkit

import (
	"fmt"
)

type MachineInfo struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	FFmpeg    string `json:"ffmpeg"`
	Nginx     string `json:"nginx"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

// binaryInfo identifies the onair binary that was measured.
type BinaryInfo struct {
	Path     string `json:"path"`
	Bytes    int64  `json:"bytes"`
	Modified string `json:"modified"`
	SHA256   string `json:"sha256"`
}

// line is the Markdown line naming the measured binary.
func (bin BinaryInfo) Line() string {
	return fmt.Sprintf("onair binary: `%s`, %.1f MB, modified %s, sha256 %.16s….\n\n",
		bin.Path, float64(bin.Bytes)/Mb, bin.Modified, bin.SHA256)
}

type InputInfo struct {
	File        string  `json:"file"`
	Encode      string  `json:"encode"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	BitrateKbps float64 `json:"bitrate_kbps"`
}
