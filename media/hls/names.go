package hls

import (
	"strconv"
	"strings"
)

// File names under /live/<stream>/ are this file's business alone: the rest of onair asks
// Server.Immutable.
//
//	index.m3u8                       multivariant playlist
//	video1_stream.m3u8, audio2_...   media playlists of the renditions (LL-HLS)
//	start.m3u8                       "from the start": an EVENT playlist of the whole run
//	<run>_video1_init.mp4            init segment of a rendition (av: both tracks)
//	<run>_video1_part<N>.mp4         part N of the run (numbered across segments)
//	<run>_video1_seg<M>.mp4          segment M (media sequence number)
//
// Every name of a run's media holds the run's id, and every URI in a playlist carries it
// as ?s=<run> too: a cache can never hand one run's file to another run's viewer.

type fileKind int

const (
	kindUnknown fileKind = iota
	kindMultivariant
	kindMediaPlaylist
	kindInit
	kindPart
	kindSegment
)

var kindNames = [...]string{kindUnknown: "other", kindMultivariant: "playlist", kindMediaPlaylist: "playlist",
	kindInit: "init", kindPart: "part", kindSegment: "segment"}

// Rendition names in file names.
const (
	renditionVideo = "video1"
	renditionAudio = "audio2"
	// renditionAV is both tracks in one fMP4 stream: the log's own layout, as "from the
	// start" serves it.
	renditionAV = "av"

	multivariantFile = "index.m3u8"
	startFile        = "start.m3u8"
	playlistSuffix   = "_stream.m3u8"
)

// fileRef is a parsed file name.
type fileRef struct {
	kind      fileKind
	rendition string
	run       string // the run id a media file names
	n         int    // part or segment number
}

// parseFile reads a file name; kind is kindUnknown for anything it does not know.
func parseFile(file string) fileRef {
	switch {
	case file == multivariantFile:
		return fileRef{kind: kindMultivariant}
	case file == startFile:
		return fileRef{kind: kindMediaPlaylist, rendition: renditionAV}
	case strings.HasSuffix(file, playlistSuffix):
		r := strings.TrimSuffix(file, playlistSuffix)
		if r == renditionVideo || r == renditionAudio || isRendition(r) {
			return fileRef{kind: kindMediaPlaylist, rendition: r}
		}
		return fileRef{}
	}
	stem, ok := strings.CutSuffix(file, ".mp4")
	if !ok {
		return fileRef{}
	}
	run, rest, ok := strings.Cut(stem, "_")
	if !ok || run == "" {
		return fileRef{}
	}
	// A further rendition's name may hold '_': what follows the last is the file's kind.
	i := strings.LastIndexByte(rest, '_')
	if i < 0 {
		return fileRef{}
	}
	rendition, what := rest[:i], rest[i+1:]
	if rendition != renditionVideo && rendition != renditionAudio && rendition != renditionAV && !isRendition(rendition) {
		return fileRef{}
	}
	ref := fileRef{rendition: rendition, run: run}
	switch {
	case what == "init":
		ref.kind = kindInit
		return ref
	case strings.HasPrefix(what, "part"):
		ref.kind = kindPart
		what = what[len("part"):]
	case strings.HasPrefix(what, "seg"):
		ref.kind = kindSegment
		what = what[len("seg"):]
	default:
		return fileRef{}
	}
	n, err := strconv.Atoi(what)
	if err != nil || n < 0 || strconv.Itoa(n) != what || (ref.kind == kindPart && rendition == renditionAV) {
		return fileRef{}
	}
	ref.n = n
	return ref
}

func classify(file string) fileKind { return parseFile(file).kind }

// Immutable reports whether file is one of a run's media files, which never change once
// served: caches may keep them for good.
func (s *Server) Immutable(file string) bool {
	switch classify(file) {
	case kindInit, kindPart, kindSegment:
		return true
	}
	return false
}

func playlistName(rendition string) string {
	if rendition == renditionAV {
		return startFile
	}
	return rendition + playlistSuffix
}

func initName(run, rendition string) string { return run + "_" + rendition + "_init.mp4" }

func partName(run, rendition string, n int) string {
	return run + "_" + rendition + "_part" + strconv.Itoa(n) + ".mp4"
}

func segmentName(run, rendition string, n int) string {
	return run + "_" + rendition + "_seg" + strconv.Itoa(n) + ".mp4"
}

// pinned adds the run id to a URI.
func pinned(uri, run string) string { return uri + "?s=" + run }
