package placement

import (
	"os"
	"testing"
)

// FuzzParse feeds arbitrary files to Parse: it must never panic, and what it
// accepts must survive the catalog form and the YAML form unchanged. The
// seeds run with every go test; go test -fuzz=FuzzParse explores further.
func FuzzParse(f *testing.F) {
	f.Add([]byte(exampleFile))
	f.Add([]byte(exampleYAML))
	if data, err := os.ReadFile("../../docs/placement/openstack.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("default: {placement: global, staleness: 0s, strict: true}\nlocality_map: {'': paris, '1': rennes}\n"))
	f.Add([]byte("databases:\n  a: &a {tables: {t: &t {placement: local, site_unique: [[x, y], z]}, u: *t}}\n  b:\n    <<: *a\n    placement: local\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		b, err := Marshal(s)
		if err != nil {
			t.Fatalf("a parsed spec does not marshal: %v", err)
		}
		back, err := Unmarshal(b)
		if err != nil || !s.Equal(back) {
			t.Fatalf("catalog round trip: %v\n%s", err, b)
		}
		y, err := s.YAML()
		if err != nil {
			t.Fatalf("a parsed spec does not marshal to YAML: %v", err)
		}
		back, err = Parse(y)
		if err != nil || !s.Equal(back) {
			t.Fatalf("YAML round trip: %v\n%s", err, y)
		}
	})
}
