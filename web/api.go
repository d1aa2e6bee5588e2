package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"onair/chat"
	"onair/rooms"
	"onair/rooms/audit"
	"onair/rooms/webhook"
)

// maxBody bounds a JSON request body.
const maxBody = 64 << 10

// apiError is the body of every error response: a stable code and a human message.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, status int, code, field, msg string) {
	var e apiError
	e.Error.Code, e.Error.Field, e.Error.Message = code, field, msg
	writeJSON(w, status, e)
}

// apiErrors is web's one table from the errors of the domain packages to HTTP answers:
// the first row whose sentinel the error wraps answers. A row without a message shows the
// error's own (a typed error's, without the context wrapped around it).
var apiErrors = []struct {
	is      []error
	status  int
	code    string
	message func(err error) string
}{
	{[]error{rooms.ErrUnavailable, chat.ErrUnavailable, audit.ErrUnavailable, webhook.ErrUnavailable},
		http.StatusServiceUnavailable, "unavailable", fixed("the database is unreachable; try again shortly")},
	{[]error{rooms.ErrInvalid, chat.ErrInvalid, audit.ErrInvalid, webhook.ErrInvalid}, http.StatusBadRequest, "invalid", nil},
	{[]error{rooms.ErrConflict}, http.StatusConflict, "conflict", nil},
	{[]error{rooms.ErrRateLimited}, http.StatusTooManyRequests, "rate_limited", nil},
	{[]error{rooms.ErrUnauthorized}, http.StatusUnauthorized, "unauthorized", fixed("sign in first")},
	// chat says which rule refused the action, e.g. who set the ban a moderator tried to lift.
	{[]error{chat.ErrForbidden}, http.StatusForbidden, "forbidden", func(err error) string {
		return strings.TrimPrefix(err.Error(), chat.ErrForbidden.Error()+": ")
	}},
	{[]error{rooms.ErrAccountDisabled}, http.StatusForbidden, "forbidden", fixed("this account is disabled")},
	{[]error{rooms.ErrAdminScope}, http.StatusForbidden, "forbidden", fixed("admin scopes are for admins")},
	{[]error{rooms.ErrForbidden}, http.StatusForbidden, "forbidden", fixed("you may not do that")},
	{[]error{webhook.ErrNoDelivery}, http.StatusNotFound, "not_found", fixed("no such delivery")},
	{[]error{webhook.ErrNotFound}, http.StatusNotFound, "not_found", fixed("no such webhook in this room")},
	{[]error{rooms.ErrNotFound, chat.ErrNotFound}, http.StatusNotFound, "not_found", fixed("not found")},
}

func fixed(msg string) func(error) string { return func(error) string { return msg } }

// fail answers with the error's row of apiErrors; other errors are logged, not shown.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	for _, row := range apiErrors {
		if !slices.ContainsFunc(row.is, func(target error) bool { return errors.Is(err, target) }) {
			continue
		}
		field, msg := typedDetail(err)
		if row.message != nil {
			msg = row.message(err)
		}
		var rl *rooms.RateLimitError
		if errors.As(err, &rl) {
			w.Header().Set("Retry-After", strconv.Itoa(int(rl.RetryAfter.Round(time.Second).Seconds())+1))
		}
		if row.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
		writeAPIError(w, row.status, row.code, field, msg)
		return
	}
	if r.Context().Err() != nil {
		return // the client left; nobody reads an answer
	}
	s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeAPIError(w, http.StatusInternalServerError, "internal", "", "something went wrong on our side")
}

// typedDetail is what a typed error of the domain packages says: the field it names and
// its own message; otherwise no field and err's message.
func typedDetail(err error) (field, msg string) {
	var (
		rv *rooms.ValidationError
		rc *rooms.ConflictError
		rl *rooms.RateLimitError
		av *audit.ValidationError
		wv *webhook.ValidationError
	)
	switch {
	case errors.As(err, &rv):
		return rv.Field, rv.Error()
	case errors.As(err, &rc):
		return rc.Field, rc.Error()
	case errors.As(err, &rl):
		return "", rl.Error()
	case errors.As(err, &av):
		return av.Field, av.Error()
	case errors.As(err, &wv):
		return wv.Field, wv.Error()
	}
	return "", err.Error()
}

// decode reads one JSON object into v, refusing unknown fields, trailing data, the wrong
// content type and bodies over maxBody.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeAPIError(w, http.StatusUnsupportedMediaType, "invalid", "", "send application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			writeAPIError(w, http.StatusRequestEntityTooLarge, "invalid", "", fmt.Sprintf("body larger than %d bytes", maxBody))
		case errors.As(err, &ute):
			writeAPIError(w, http.StatusBadRequest, "invalid", ute.Field, fmt.Sprintf("%s: want a %s", ute.Field, ute.Type))
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			writeAPIError(w, http.StatusBadRequest, "invalid", field, "unknown field "+strconv.Quote(field))
		default:
			writeAPIError(w, http.StatusBadRequest, "invalid", "", "malformed JSON: "+err.Error())
		}
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeAPIError(w, http.StatusBadRequest, "invalid", "", "one JSON object expected")
		return false
	}
	return true
}

// respond answers v with status, or err through fail.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

// queryInt reads an optional integer query parameter.
func queryInt(w http.ResponseWriter, r *http.Request, name string) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		writeAPIError(w, http.StatusBadRequest, "invalid", name, name+" must be a non-negative integer")
		return 0, false
	}
	return n, true
}
