package oldkit

import (
	"fmt"
	"math"
	"strings"
)

func Fnum(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return NotMeasured
	}
	return fmt.Sprintf("%.*f", decimals, v)
}

func Fratio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return NotMeasured
	}
	return fmt.Sprintf("%.2fx", v)
}

// table renders a Markdown table.
func Table(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat(" --- |", len(header)) + "\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

// runErrors lists a benchmark run's errors, if any, ahead of its figures.
func RunErrors(b *strings.Builder, errs []string) {
	if len(errs) == 0 {
		return
	}
	b.WriteString("**This run had errors; the figures they affect are missing:**\n\n")
	for _, e := range errs {
		fmt.Fprintf(b, "- %s\n", strings.ReplaceAll(e, "\n", " "))
	}
	b.WriteString("\n")
}
