package oldkit

import (
	"fmt"
	"strings"
)

// rigSectionHead writes a section's title and the lines saying how, where and on what it
// was measured.
func RigSectionHead(b *strings.Builder, title, command, started, finished string, m MachineInfo, bin BinaryInfo) {
	fmt.Fprintf(b, "## %s\n\n", title)
	fmt.Fprintf(b, "Produced by `%s` on %s (finished %s).\n\n", command, started, finished)
	fmt.Fprintf(b, "Machine: %d cores (`nproc`), %s, Linux %s (`uname -r`), %s, %s. "+
		"Load average (1, 5, 15 min) %s at the start, %s at the end; *machine busy* is the whole machine's "+
		"CPU use during a measurement, in %% of all cores, the load's own included.\n\n",
		m.CPUs, m.CPUModel, m.Kernel, m.Go, m.FFmpeg, m.LoadStart, m.LoadEnd)
	b.WriteString(bin.Line())
}

// rigJoin lists xs with the given decimals.
func RigJoin(xs []float64, decimals int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = Fnum(x, decimals)
	}
	return strings.Join(s, ", ")
}
