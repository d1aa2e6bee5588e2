package oldkit

import (
	"fmt"
)

// churnWatch is what one player saw: when each part arrived (sorted), and the errors
// after which it joined again (seconds).
type ChurnWatch struct {
	Node     string
	Room     int
	Arrivals []float64
	errs     []churnNote
}

type churnNote struct {
	at  float64
	msg string
}

// longestGap is the longest time in [from, to) without an arrival (between two, or from
// from to the first, or from the last to to), and when it began.
func LongestGap(arrivals []float64, from, to float64) (gap, at float64) {
	last := from
	for _, a := range arrivals {
		if a >= to {
			break
		}
		if a >= from {
			if a-last > gap {
				gap, at = a-last, last
			}
			last = a
		}
	}
	if to-last > gap {
		gap, at = to-last, last
	}
	return gap, at
}

// errsIn lists the distinct errors the player met in [from, to], with how many times.
func (w ChurnWatch) ErrsIn(from, to float64) []string {
	var msgs []string
	n := map[string]int{}
	for _, e := range w.errs {
		if e.at >= from && e.at <= to {
			if n[e.msg]++; n[e.msg] == 1 {
				msgs = append(msgs, e.msg)
			}
		}
	}
	for i, m := range msgs {
		msgs[i] = fmt.Sprintf("%s (×%d)", m, n[m])
	}
	return msgs
}
