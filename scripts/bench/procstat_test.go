package main

import "testing"

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (nginx: worker (x)) S 4241 4241 4241 0 -1 4194624 1503 0 0 0 123 45 0 0 20 0 1 0 88 1 2\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != 4241 || st.CPUTicks != 168 {
		t.Errorf("parseStat = %+v, want ppid 4241 and 168 ticks", st)
	}
	if _, err := parseStat([]byte("1 (x) S 0")); err == nil {
		t.Error("a short stat line was accepted")
	}
}

func TestParseRSS(t *testing.T) {
	rss, err := parseRSS([]byte("Name:\tonair\nVmPeak:\t  9999 kB\nVmRSS:\t   15124 kB\nThreads:\t7\n"))
	if err != nil || rss != 15124*1024 {
		t.Errorf("parseRSS = %d, %v; want %d", rss, err, 15124*1024)
	}
	if _, err := parseRSS([]byte("Name:\tzombie\n")); err == nil {
		t.Error("a status without VmRSS was accepted")
	}
}
