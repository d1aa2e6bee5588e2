package oldkit

import (
	"fmt"
	"strconv"
	"strings"
)

// parseCounts reads a comma-separated list of positive counts, such as "10,100,500".
func ParseCounts(list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", s)
		}
		out = append(out, n)
	}
	return out, nil
}
