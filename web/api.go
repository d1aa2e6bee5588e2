package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"onair/chat"
	"onair/rooms"
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

// fail answers with the error's stable code; internal errors are logged, not shown.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ve *rooms.ValidationError
	var ce *rooms.ConflictError
	var rl *rooms.RateLimitError
	switch {
	case errors.As(err, &ve):
		writeAPIError(w, http.StatusBadRequest, "invalid", ve.Field, ve.Error())
	case errors.As(err, &ce):
		writeAPIError(w, http.StatusConflict, "conflict", ce.Field, ce.Error())
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(int(rl.RetryAfter.Round(time.Second).Seconds())+1))
		writeAPIError(w, http.StatusTooManyRequests, "rate_limited", "", rl.Error())
	case errors.Is(err, rooms.ErrUnavailable), errors.Is(err, chat.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "", "the database is unreachable; try again shortly")
	case errors.Is(err, rooms.ErrInvalid), errors.Is(err, chat.ErrInvalid):
		writeAPIError(w, http.StatusBadRequest, "invalid", "", err.Error())
	case errors.Is(err, rooms.ErrUnauthorized):
		writeAPIError(w, http.StatusUnauthorized, "unauthorized", "", "sign in first")
	case errors.Is(err, chat.ErrForbidden):
		// chat says which rule refused the action, e.g. who set the ban a moderator tried to lift.
		writeAPIError(w, http.StatusForbidden, "forbidden", "", strings.TrimPrefix(err.Error(), chat.ErrForbidden.Error()+": "))
	case errors.Is(err, rooms.ErrForbidden):
		writeAPIError(w, http.StatusForbidden, "forbidden", "", "you may not do that")
	case errors.Is(err, rooms.ErrNotFound), errors.Is(err, chat.ErrNotFound):
		writeAPIError(w, http.StatusNotFound, "not_found", "", "not found")
	case errors.Is(err, rooms.ErrConflict):
		writeAPIError(w, http.StatusConflict, "conflict", "", err.Error())
	case r.Context().Err() != nil:
		// The client left; nobody reads an answer.
	default:
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeAPIError(w, http.StatusInternalServerError, "internal", "", "something went wrong on our side")
	}
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
