package oldkit

import (
	"fmt"
	"io"
	"time"
)

// runLog writes a benchmark's progress lines ("15:04:05 bench <name>: ...") and collects
// the errors of failed measurements into its results, whose run goes on.
type RunLog struct {
	Name string
	Out  io.Writer
	Errs *[]string // the results' Errors; nil for a benchmark that stops at the first
}

func (l RunLog) Logf(format string, a ...any) {
	fmt.Fprintf(l.Out, "%s bench %s: %s\n", time.Now().Format("15:04:05"), l.Name, fmt.Sprintf(format, a...))
}

// fail records a failed measurement; the run goes on with the next one.
func (l RunLog) Fail(err error) {
	l.Logf("error: %v", err)
	*l.Errs = append(*l.Errs, err.Error())
}
