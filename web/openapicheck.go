package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// The check that the OpenAPI document and the router agree, both ways: every pattern the
// router serves is documented, and every documented operation reaches a handler (neither
// the router's 404, marked with noRouteHeader, nor its 405). Tests run it in-process
// (web) and against the real binary over HTTP (cmd/onair/e2e).

// DocumentedOperations lists the operations of an OpenAPI document as "GET /path".
func DocumentedOperations(doc []byte) ([]string, error) {
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("read the OpenAPI document: %w", err)
	}
	var ops []string
	for path, methods := range d.Paths {
		for m := range methods {
			ops = append(ops, strings.ToUpper(m)+" "+path)
		}
	}
	slices.Sort(ops)
	return ops, nil
}

// Undocumented returns the ServeMux patterns served that no documented operation
// describes. A pattern without a method is documented by any operation on its path.
func Undocumented(served, ops []string) []string {
	var out []string
	for _, p := range served {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			method, path = "", p
		}
		path = docPath(path)
		found := slices.ContainsFunc(ops, func(op string) bool {
			m, opPath, _ := strings.Cut(op, " ")
			return opPath == path && (method == "" || m == method)
		})
		if !found {
			out = append(out, p)
		}
	}
	return out
}

// placeholders fill a documented path's parameters for Unanswered: values that no room,
// user or webhook has, so that no call changes anything.
var placeholders = strings.NewReplacer(
	"{slug}", "no-such-room-0", "{id}", "000000000000000000000000", "{handle}", "nobody_0",
	"{user}", "nobody_0", "{delivery}", "000000000000000000000000", "{name}", "no-such-stream",
	"{file}", "index.m3u8", "{ref}", "no-such-room-0", "{key}", "recordings/none",
)

// Unanswered calls each operation once through do, with placeholder path parameters and,
// for methods with a body, an empty JSON object, and returns those that the router itself
// refused.
func Unanswered(ops []string, do func(method, path string) (*http.Response, error)) ([]string, error) {
	var out []string
	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		resp, err := do(method, placeholders.Replace(path))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusMethodNotAllowed || (resp.StatusCode == http.StatusNotFound && resp.Header.Get(noRouteHeader) != "") {
			out = append(out, fmt.Sprintf("%s: %d from the router", op, resp.StatusCode))
		}
	}
	return out, nil
}
