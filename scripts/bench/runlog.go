package main

import (
	"fmt"
	"io"
	"time"
)

// runLog writes a benchmark's progress lines ("15:04:05 bench <name>: ...") and collects
// the errors of failed measurements into its results, whose run goes on.
type runLog struct {
	name string
	out  io.Writer
	errs *[]string // the results' Errors; nil for a benchmark that stops at the first
}

func (l runLog) logf(format string, a ...any) {
	fmt.Fprintf(l.out, "%s bench %s: %s\n", time.Now().Format("15:04:05"), l.name, fmt.Sprintf(format, a...))
}

// fail records a failed measurement; the run goes on with the next one.
func (l runLog) fail(err error) {
	l.logf("error: %v", err)
	*l.errs = append(*l.errs, err.Error())
}
