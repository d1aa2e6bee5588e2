package live

import (
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"onair/scripts/bench/benchkit"
)

// TestStampTag: the publisher puts its stamp before the first slice of an AVC frame tag,
// keeps the tag header, and leaves sequence headers alone.
func TestStampTag(t *testing.T) {
	au, err := h264.AVCC([][]byte{{0x09, 0xf0}, {0x65, 0x88, 0x84}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tag := append([]byte{0x17, 1, 0, 0, 0}, au...)
	p := &publisher{}
	out := p.stamp(tag)
	var got h264.AVCC
	if err := got.Unmarshal(out[5:]); err != nil || string(out[:5]) != string(tag[:5]) || len(got) != 3 {
		t.Fatalf("stamped tag %x: %v", out, err)
	}
	if f := benchkit.InspectAU(got); len(p.Stamps()) != 1 || f.Stamp != p.Stamps()[0] || !f.IDR || got[1][0]&0x1f != 6 {
		t.Errorf("frame %+v, stamps %v, NAL types %x %x %x", f, p.Stamps(), got[0][0], got[1][0], got[2][0])
	}
	header := []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff}
	if out := p.stamp(header); string(out) != string(header) {
		t.Errorf("sequence header changed: %x", out)
	}
}
