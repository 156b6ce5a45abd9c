package placement

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const exampleYAML = `default: global
databases:
  nova:
    tables:
      flavors:
        placement: global
        staleness: 1s
      instance_extra:
        placement: local
        parent: instances(uuid) via instance_uuid
      instances:
        placement: local
        locality: host
        site_unique: [uuid]
  nova_cell1:
    placement: site:paris
locality_map:
  compute-12: rennes
`

func TestYAMLOutput(t *testing.T) {
	b, err := exampleSpec().YAML()
	require.NoError(t, err)
	require.Equal(t, exampleYAML, string(b))

	// yaml.Marshal of a *Spec goes through MarshalYAML too.
	b, err = yaml.Marshal(exampleSpec())
	require.NoError(t, err)
	back, err := Parse(b)
	require.NoError(t, err)
	require.Equal(t, exampleSpec(), back)
}

func TestYAMLOutputForms(t *testing.T) {
	s := &Spec{
		Default: Table{Kind: Global, Staleness: 0, Strict: true},
		Databases: map[string]Database{"nova": {
			Policy: &Table{Kind: Global, Staleness: 1500 * time.Millisecond},
			Tables: map[string]Table{"t": {Kind: Local, SiteUnique: []string{"uuid", "resource_type,resource_id"}}},
		}},
	}
	b, err := s.YAML()
	require.NoError(t, err)
	require.Equal(t, `default:
  placement: global
  staleness: 0s
  strict: true
databases:
  nova:
    placement: global
    staleness: 1.5s
    tables:
      t:
        placement: local
        site_unique: [[resource_type, resource_id], uuid]
`, string(b))
	back, err := Parse(b)
	require.NoError(t, err)
	require.True(t, s.Equal(back))
}

func TestYAMLRoundTrip(t *testing.T) {
	r := genRand(3)
	for i := range 2000 {
		s := genSpec(t, r)
		b, err := s.YAML()
		require.NoError(t, err, "spec %d", i)
		back, err := Parse(b)
		require.NoError(t, err, "spec %d:\n%s", i, b)
		require.True(t, s.Equal(back), "spec %d:\n%s", i, b)
		again, err := back.YAML()
		require.NoError(t, err)
		require.Equal(t, string(b), string(again), "spec %d", i)
	}
}

func TestYAMLRefusesInvalidSpecs(t *testing.T) {
	_, err := (&Spec{}).YAML()
	require.ErrorIs(t, err, ErrInvalid)
}
