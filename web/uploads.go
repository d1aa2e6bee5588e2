package web

import (
	"context"
	"errors"
	"net/http"

	"onair/rooms"
	"onair/rooms/uploads"
)

// uploadRequest starts an upload of a video file as a past broadcast.
type uploadRequest struct {
	Filename    string `json:"filename"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
	Title       string `json:"title"`
}

// uploadsReady answers 404 when uploads are not configured (no MongoDB).
func (s *Server) uploadsReady(w http.ResponseWriter) bool {
	if s.cfg.Uploads == nil {
		writeAPIError(w, http.StatusNotFound, "not_found", "", "uploads are not configured")
		return false
	}
	return true
}

func (s *Server) failUpload(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, uploads.ErrTooLarge) {
		writeAPIError(w, http.StatusRequestEntityTooLarge, "invalid", "size", err.Error())
		return
	}
	s.fail(w, r, err)
}

func (s *Server) createUpload(w http.ResponseWriter, r *http.Request) {
	var in uploadRequest
	if !s.uploadsReady(w) || !decode(w, r, &in) {
		return
	}
	u, room, ok := s.editedRoom(w, r, "only the room's owner or an admin uploads its videos")
	if !ok {
		return
	}
	v, err := s.cfg.Uploads.Create(r.Context(), u, room, uploads.NewUpload{Filename: in.Filename, Size: in.Size,
		ContentType: in.ContentType, Title: in.Title})
	if err != nil {
		s.failUpload(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) getUpload(w http.ResponseWriter, r *http.Request) {
	s.onUpload(w, r, "only the room's owner or an admin sees its uploads", http.StatusOK, s.cfg.Uploads.Get)
}

func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request) {
	s.onUpload(w, r, "only the room's owner or an admin uploads its videos", http.StatusAccepted, s.cfg.Uploads.Complete)
}

// onUpload answers with what op does to the upload {id} of the room {slug}, for one who may
// edit the room.
func (s *Server) onUpload(w http.ResponseWriter, r *http.Request, why string, status int,
	op func(context.Context, rooms.User, rooms.Room, string) (uploads.View, error)) {
	if !s.uploadsReady(w) {
		return
	}
	u, room, ok := s.editedRoom(w, r, why)
	if !ok {
		return
	}
	v, err := op(r.Context(), u, room, r.PathValue("id"))
	if err != nil {
		s.failUpload(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

func (s *Server) abortUpload(w http.ResponseWriter, r *http.Request) {
	if !s.uploadsReady(w) {
		return
	}
	u, room, ok := s.editedRoom(w, r, "only the room's owner or an admin cancels its uploads")
	if !ok {
		return
	}
	if err := s.cfg.Uploads.Abort(r.Context(), u, room, r.PathValue("id")); err != nil {
		s.failUpload(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
