package fmp4

import "encoding/binary"

// Sample is one access unit of a track, in the track's timescale.
type Sample struct {
	DTS       int64
	PTSOffset int32
	// Duration is set once the next sample's decode time is known.
	Duration uint32
	Sync     bool
	// Payload is the sample's data: NAL units (written with length prefixes) for H.264
	// and H.265, one element for the other codecs. It aliases the access unit's.
	Payload [][]byte
}

// Box layout of a track fragment, the same bytes as mediacommon's fmp4.Part.Marshal writes
// for one track (a test checks), without go-mp4's reflection, which costs far more than
// the copy of the media itself:
//
//	moof
//	  mfhd     sequence number
//	  traf
//	    tfhd   track ID, default-base-is-moof
//	    tfdt   version 1: decode time of the first sample
//	    trun   version 1: data offset, then per sample duration, size, [flags], [cto]
//	mdat       the samples' data
const (
	boxHeader = 8
	mfhdSize  = boxHeader + 4 + 4
	tfhdSize  = boxHeader + 4 + 4
	tfdtSize  = boxHeader + 4 + 8
	trunFixed = boxHeader + 4 + 4 + 4 // full box header, sample count, data offset

	trunDataOffset  = 0x001
	trunDuration    = 0x100
	trunSize        = 0x200
	trunFlags       = 0x400
	trunCTO         = 0x800
	tfhdBaseIsMoof  = 0x020000
	sampleNonSync   = 1 << 16
	lengthPrefixLen = 4
)

// sampleSize is the bytes a sample takes in mdat.
func (t *Track) sampleSize(s *Sample) int {
	n := 0
	for _, p := range s.Payload {
		n += len(p)
	}
	if t.avcc {
		n += lengthPrefixLen * len(s.Payload)
	}
	return n
}

// trunFlagsFor is the trun flags the samples need: flags only with a non-sync sample,
// composition offsets only with one that is not 0.
func trunFlagsFor(samples []Sample) uint32 {
	flags := uint32(trunDataOffset | trunDuration | trunSize)
	for i := range samples {
		if !samples[i].Sync {
			flags |= trunFlags
		}
		if samples[i].PTSOffset != 0 {
			flags |= trunCTO
		}
	}
	return flags
}

func entrySize(flags uint32) int {
	n := 8
	if flags&trunFlags != 0 {
		n += 4
	}
	if flags&trunCTO != 0 {
		n += 4
	}
	return n
}

// FragmentSize is the bytes AppendFragment adds for these samples.
func (t *Track) FragmentSize(samples []Sample) int {
	flags := trunFlagsFor(samples)
	n := boxHeader + mfhdSize + boxHeader + tfhdSize + tfdtSize + trunFixed + len(samples)*entrySize(flags) + boxHeader
	for i := range samples {
		n += t.sampleSize(&samples[i])
	}
	return n
}

// AppendFragment appends one moof + mdat holding samples (in decode order, durations
// set) to dst, with sequence number seq in its mfhd; the first sample is decoded at base.
// Without samples it is an empty fragment: a stretch of the track without media.
func (t *Track) AppendFragment(dst []byte, seq uint32, base int64, samples []Sample) []byte {
	flags := trunFlagsFor(samples)
	trunLen := trunFixed + len(samples)*entrySize(flags)
	trafLen := boxHeader + tfhdSize + tfdtSize + trunLen
	moofLen := boxHeader + mfhdSize + trafLen
	data := 0
	for i := range samples {
		data += t.sampleSize(&samples[i])
	}

	be := binary.BigEndian
	box := func(size int, typ string) {
		dst = be.AppendUint32(dst, uint32(size))
		dst = append(dst, typ...)
	}
	box(moofLen, "moof")
	box(mfhdSize, "mfhd")
	dst = be.AppendUint32(dst, 0) // version, flags
	dst = be.AppendUint32(dst, seq)
	box(trafLen, "traf")
	box(tfhdSize, "tfhd")
	dst = be.AppendUint32(dst, tfhdBaseIsMoof)
	dst = be.AppendUint32(dst, t.ID)
	box(tfdtSize, "tfdt")
	dst = be.AppendUint32(dst, 1<<24) // version 1
	dst = be.AppendUint64(dst, uint64(base))
	box(trunLen, "trun")
	dst = be.AppendUint32(dst, 1<<24|flags) // version 1: signed composition offsets
	dst = be.AppendUint32(dst, uint32(len(samples)))
	dst = be.AppendUint32(dst, uint32(moofLen+boxHeader)) // data starts after mdat's header
	for i := range samples {
		s := &samples[i]
		dst = be.AppendUint32(dst, s.Duration)
		dst = be.AppendUint32(dst, uint32(t.sampleSize(s)))
		if flags&trunFlags != 0 {
			var f uint32
			if !s.Sync {
				f = sampleNonSync
			}
			dst = be.AppendUint32(dst, f)
		}
		if flags&trunCTO != 0 {
			dst = be.AppendUint32(dst, uint32(s.PTSOffset))
		}
	}
	box(boxHeader+data, "mdat")
	for i := range samples {
		for _, p := range samples[i].Payload {
			if t.avcc {
				dst = be.AppendUint32(dst, uint32(len(p)))
			}
			dst = append(dst, p...)
		}
	}
	return dst
}
