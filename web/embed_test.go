package web

import "testing"

func TestFrameAncestors(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
		ok   bool
	}{
		{nil, "*", true},
		{[]string{"*"}, "*", true},
		{[]string{"'self'", "https://blog.example.com", "https://*.example.org:8443"}, "'self' https://blog.example.com https://*.example.org:8443", true},
		{[]string{"'none'"}, "'none'", true},
		{[]string{"https:"}, "https:", true},
		{[]string{"'none'", "'self'"}, "", false},
		{[]string{"https://a.example; script-src *"}, "", false},
		{[]string{"https://a.example/path"}, "", false},
		{[]string{"javascript:alert(1)"}, "", false},
		{[]string{"a.example"}, "", false},
		{[]string{"'unsafe-inline'"}, "", false},
		{[]string{"https://a.example 'self'"}, "", false},
	} {
		got, err := FrameAncestors(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("FrameAncestors(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
