package web

import (
	"embed"
	"io/fs"
)

// The bundle built by `make ui`. dist/README.md is committed so that the package compiles
// on a fresh clone before the bundle is built.
//
//go:embed all:ui/dist
var embedded embed.FS

//go:embed templates
var templateFS embed.FS

func assetFS() fs.FS {
	sub, err := fs.Sub(embedded, "ui/dist")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return sub
}
