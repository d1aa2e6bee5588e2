package upload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	amp4 "github.com/abema/go-mp4"
)

// table is a track's sample table as the file has it.
type table struct {
	id         int
	timescale  uint32
	lengthSize int
	stts       *amp4.Stts
	ctts       *amp4.Ctts
	stss       *amp4.Stss
	stsc       *amp4.Stsc
	sizes      []uint32
	fixedSize  uint32
	count      uint32
	chunks     []uint64
	// editStart is where the track's presentation begins: an initial empty edit (in the
	// movie's timescale) minus the media time of its first edit (in the track's).
	emptyEdit uint64
	mediaTime int64
	// handler is the track's kind (vide, soun, ...), format its sample entry's 4CC, stsd
	// and trak the raw boxes.
	handler, format string
	stsd, trak      []byte
}

// readTables reads every track's sample table from the moov box, and the movie's
// timescale.
func readTables(moov []byte) (map[int]*table, uint32, error) {
	out := map[int]*table{}
	var cur *table
	var movieScale uint32
	_, err := amp4.ReadBoxStructure(bytes.NewReader(moov), func(h *amp4.ReadHandle) (any, error) {
		switch h.BoxInfo.Type.String() {
		case "moov", "mdia", "minf", "stbl", "edts":
			return h.Expand()
		case "trak":
			cur = &table{lengthSize: 4, trak: moov[h.BoxInfo.Offset : h.BoxInfo.Offset+h.BoxInfo.Size]}
			return h.Expand()
		case "mvhd", "tkhd", "mdhd", "stts", "ctts", "stss", "stsc", "stsz", "stco", "co64", "elst":
		case "hdlr":
			if cur != nil && len(h.Path) == 4 { // moov/trak/mdia/hdlr, not minf's
				b := moov[h.BoxInfo.Offset+h.BoxInfo.HeaderSize : h.BoxInfo.Offset+h.BoxInfo.Size]
				if len(b) >= 12 {
					cur.handler = string(b[8:12])
				}
			}
			return nil, nil
		case "stsd":
			if cur != nil {
				cur.stsd = moov[h.BoxInfo.Offset : h.BoxInfo.Offset+h.BoxInfo.Size]
				cur.lengthSize = nalLengthSize(cur.stsd)
				if len(cur.stsd) >= 24 {
					cur.format = string(cur.stsd[20:24])
				}
			}
			return nil, nil
		default:
			return nil, nil
		}
		b, _, err := h.ReadPayload()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.BoxInfo.Type, err)
		}
		if v, ok := b.(*amp4.Mvhd); ok {
			movieScale = v.Timescale
			return nil, nil
		}
		if cur == nil {
			return nil, fmt.Errorf("%s outside a track", h.BoxInfo.Type)
		}
		switch v := b.(type) {
		case *amp4.Tkhd:
			cur.id = int(v.TrackID)
			out[cur.id] = cur
		case *amp4.Mdhd:
			cur.timescale = v.Timescale
		case *amp4.Stts:
			cur.stts = v
		case *amp4.Ctts:
			cur.ctts = v
		case *amp4.Stss:
			cur.stss = v
		case *amp4.Stsc:
			cur.stsc = v
		case *amp4.Stsz:
			cur.fixedSize, cur.count, cur.sizes = v.SampleSize, v.SampleCount, v.EntrySize
		case *amp4.Stco:
			for _, o := range v.ChunkOffset {
				cur.chunks = append(cur.chunks, uint64(o))
			}
		case *amp4.Co64:
			cur.chunks = v.ChunkOffset
		case *amp4.Elst:
			cur.readEdits(v)
		}
		return nil, nil
	})
	return out, movieScale, err
}

// readEdits keeps what onair honours of an edit list: an initial empty edit (a delay) and
// the media time the first real edit starts at (what encoders use to hide B-frame delay
// and audio priming).
func (t *table) readEdits(e *amp4.Elst) {
	for i := range e.Entries {
		mt := e.GetMediaTime(i)
		if mt == -1 {
			if i == 0 {
				t.emptyEdit = e.GetSegmentDuration(i)
			}
			continue
		}
		t.mediaTime = mt
		return
	}
}

// nalLengthSize reads the NAL unit length size from an stsd's avcC or hvcC (4 when it has
// neither).
func nalLengthSize(stsd []byte) int {
	// stsd: header (8), version and flags (4), entry count (4), then the first sample
	// entry: header (8) and 78 bytes of a visual sample entry before its child boxes.
	const children = 8 + 4 + 4 + 8 + 78
	for off := children; off+8 <= len(stsd); {
		size := int(binary.BigEndian.Uint32(stsd[off:]))
		if size < 8 || off+size > len(stsd) {
			break
		}
		p := stsd[off+8 : off+size]
		switch string(stsd[off+4 : off+8]) {
		case "avcC":
			if len(p) > 4 {
				return int(p[4]&3) + 1
			}
		case "hvcC":
			if len(p) > 21 {
				return int(p[21]&3) + 1
			}
		}
		off += size
	}
	return 4
}

var errTable = errors.New("inconsistent sample table")

// samples expands the table into one entry per sample, in decode order.
func (t *table) samples(fileSize int64) ([]Sample, error) {
	if t.stts == nil || t.stsc == nil || len(t.chunks) == 0 || t.timescale == 0 {
		return nil, fmt.Errorf("%w: stts, stsc, chunk offsets or timescale missing", errTable)
	}
	n := t.count
	if n > maxSamples {
		return nil, fmt.Errorf("%d samples, more than %d", n, maxSamples)
	}
	if t.fixedSize == 0 && uint32(len(t.sizes)) != n {
		return nil, fmt.Errorf("%w: %d sizes for %d samples", errTable, len(t.sizes), n)
	}
	out := make([]Sample, n)
	// Timing.
	i := 0
	var dts int64
	for _, e := range t.stts.Entries {
		for range e.SampleCount {
			if i == int(n) {
				return nil, fmt.Errorf("%w: stts has more samples than stsz", errTable)
			}
			out[i].DTS, out[i].Duration = dts, e.SampleDelta
			dts += int64(e.SampleDelta)
			i++
		}
	}
	if i != int(n) {
		return nil, fmt.Errorf("%w: stts has %d samples, stsz %d", errTable, i, n)
	}
	if t.ctts != nil {
		i = 0
		for k, e := range t.ctts.Entries {
			for range e.SampleCount {
				if i == int(n) {
					return nil, fmt.Errorf("%w: ctts has more samples than stsz", errTable)
				}
				out[i].PTSOffset = int32(t.ctts.GetSampleOffset(k))
				i++
			}
		}
	}
	// Sync samples: all of them without stss.
	if t.stss == nil {
		for i := range out {
			out[i].Sync = true
		}
	} else {
		for _, s := range t.stss.SampleNumber {
			if s == 0 || s > n {
				return nil, fmt.Errorf("%w: sync sample %d of %d", errTable, s, n)
			}
			out[s-1].Sync = true
		}
	}
	// Sizes and offsets, chunk by chunk.
	i = 0
	entries := t.stsc.Entries
	for k, e := range entries {
		if e.FirstChunk == 0 || e.SamplesPerChunk == 0 {
			return nil, fmt.Errorf("%w: stsc entry %d", errTable, k)
		}
		last := uint32(len(t.chunks))
		if k+1 < len(entries) {
			last = entries[k+1].FirstChunk - 1
		}
		for c := e.FirstChunk; c <= last && i < int(n); c++ {
			if int(c) > len(t.chunks) {
				return nil, fmt.Errorf("%w: chunk %d of %d", errTable, c, len(t.chunks))
			}
			off := int64(t.chunks[c-1])
			for j := uint32(0); j < e.SamplesPerChunk && i < int(n); j++ {
				size := t.fixedSize
				if size == 0 {
					size = t.sizes[i]
				}
				if size > maxSampleSize || off+int64(size) > fileSize {
					return nil, fmt.Errorf("sample %d (%d bytes at %d) lies past the end of the file: the upload is truncated", i+1, size, off)
				}
				out[i].Offset, out[i].Size = off, size
				off += int64(size)
				i++
			}
		}
	}
	if i != int(n) {
		return nil, fmt.Errorf("%w: chunks hold %d of %d samples", errTable, i, n)
	}
	return out, nil
}

// shift moves the track's decode times by its edit list, in its own timescale (start
// may be negative; alignStarts makes every track start at 0 or later).
func (t *table) shift(tr *Track, movieScale uint32) {
	d := -t.mediaTime
	if movieScale > 0 {
		d += int64(t.emptyEdit) * int64(tr.Timescale) / int64(movieScale)
	}
	if d == 0 {
		return
	}
	for i := range tr.Samples {
		tr.Samples[i].DTS += d
	}
}

// alignStarts moves every track by the same time so that none decodes before 0.
func alignStarts(m *Movie) {
	earliest := 0.0
	for _, t := range []*Track{m.Video, m.Audio} {
		if t != nil {
			earliest = min(earliest, float64(t.Samples[0].DTS)/float64(t.Timescale))
		}
	}
	if earliest == 0 {
		return
	}
	for _, t := range []*Track{m.Video, m.Audio} {
		if t == nil {
			continue
		}
		d := int64(-earliest*float64(t.Timescale) + 0.5)
		for i := range t.Samples {
			t.Samples[i].DTS += d
		}
		if t.Samples[0].DTS < 0 { // rounding
			for i := range t.Samples {
				t.Samples[i].DTS -= t.Samples[0].DTS
			}
		}
	}
}
