package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// flvFile builds an FLV file holding tags, with an extra header of pad bytes.
func flvFile(pad int, tags ...flvTag) []byte {
	var b bytes.Buffer
	b.WriteString("FLV")
	b.WriteByte(1)
	b.WriteByte(0x05) // audio and video
	_ = binary.Write(&b, binary.BigEndian, uint32(9+pad))
	b.Write(make([]byte, pad))
	prev := uint32(0)
	for _, t := range tags {
		_ = binary.Write(&b, binary.BigEndian, prev)
		size := len(t.Data)
		b.Write([]byte{t.Type, byte(size >> 16), byte(size >> 8), byte(size),
			byte(t.Timestamp >> 16), byte(t.Timestamp >> 8), byte(t.Timestamp), byte(t.Timestamp >> 24),
			0, 0, 0})
		b.Write(t.Data)
		prev = uint32(11 + size)
	}
	_ = binary.Write(&b, binary.BigEndian, prev)
	return b.Bytes()
}

func TestFLVReader(t *testing.T) {
	want := []flvTag{
		{Type: flvTagScript, Timestamp: 0, Data: []byte{2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a'}},
		{Type: flvTagVideo, Timestamp: 0, Data: []byte{0x17, 0, 0, 0, 0, 1, 2}},
		{Type: flvTagAudio, Timestamp: 21, Data: []byte{0xaf, 1, 0x21}},
		{Type: flvTagVideo, Timestamp: 0x01020304, Data: []byte{0x27, 1, 0, 0, 0}}, // extended timestamp
		{Type: flvTagAudio, Timestamp: 0x01020305, Data: []byte{}},
	}
	for _, pad := range []int{0, 4} {
		got, err := readFLVTags(bytes.NewReader(flvFile(pad, want...)))
		if err != nil {
			t.Fatalf("pad %d: %v", pad, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("pad %d: tags\n%+v\nwant\n%+v", pad, got, want)
		}
	}
}

func TestFLVReaderEndsWithoutTrailingSize(t *testing.T) {
	file := flvFile(0, flvTag{Type: flvTagAudio, Timestamp: 5, Data: []byte{1}})
	r := newFLVReader(bytes.NewReader(file[:len(file)-4]))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last tag: %v, want io.EOF", err)
	}
}

func TestFLVReaderErrors(t *testing.T) {
	good := flvFile(0, flvTag{Type: flvTagVideo, Timestamp: 1, Data: []byte{1, 2, 3, 4}})
	encrypted := bytes.Clone(good)
	encrypted[13] |= 0x20
	badVersion := bytes.Clone(good)
	badVersion[3] = 2
	for name, tc := range map[string]struct {
		file []byte
		want string
	}{
		"not flv":       {[]byte("GIF89a......"), "not an FLV file"},
		"short header":  {good[:5], "file header"},
		"bad version":   {badVersion, "version 2"},
		"truncated tag": {good[:len(good)-6], "tag body"},
		"cut header":    {good[:18], "tag header"},
		"encrypted":     {encrypted, "encrypted"},
		"no tags":       {good[:13], "no tags"},
	} {
		_, err := readFLVTags(bytes.NewReader(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", name, err, tc.want)
		}
	}
}
