package placement

import (
	"bytes"
	"strings"

	"go.yaml.in/yaml/v3"
)

var _ yaml.Marshaler = (*Spec)(nil)

// MarshalYAML gives the spec as a placement file, so that yaml.Marshal of a
// *Spec writes what Parse reads back to an equal spec. Entries are sorted;
// a global policy's staleness is written unless it is DefaultStaleness,
// and strict only when true.
func (s *Spec) MarshalYAML() (any, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	root := mapping()
	root.Content = append(root.Content, str("default"), defaultNode(s.Default))
	if len(s.Databases) > 0 {
		dbs := mapping()
		for _, name := range sortedKeys(s.Databases) {
			db := s.Databases[name]
			n := mapping()
			if db.Policy != nil {
				n.Content = policyContent(*db.Policy)
			}
			if len(db.Tables) > 0 {
				tables := mapping()
				for _, tn := range sortedKeys(db.Tables) {
					t := mapping()
					t.Content = policyContent(db.Tables[tn])
					tables.Content = append(tables.Content, str(tn), t)
				}
				n.Content = append(n.Content, str("tables"), tables)
			}
			dbs.Content = append(dbs.Content, str(name), n)
		}
		root.Content = append(root.Content, str("databases"), dbs)
	}
	if len(s.LocalityMap) > 0 {
		m := mapping()
		for _, v := range sortedKeys(s.LocalityMap) {
			m.Content = append(m.Content, str(v), str(s.LocalityMap[v]))
		}
		root.Content = append(root.Content, str("locality_map"), m)
	}
	return root, nil
}

// YAML returns the spec as a placement file, indented by two spaces as the
// examples in docs/PLACEMENT.md are.
func (s *Spec) YAML() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }

// str is a string scalar; the encoder quotes it when it would otherwise
// read back as something else (a number, a boolean, null).
func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// defaultNode writes the short form "default: global" when nothing but the
// placement needs saying.
func defaultNode(t Table) *yaml.Node {
	if t.Kind != Global || t.Staleness == DefaultStaleness && !t.Strict {
		return str(t.Placement())
	}
	n := mapping()
	n.Content = policyContent(t)
	return n
}

func policyContent(t Table) []*yaml.Node {
	c := []*yaml.Node{str("placement"), str(t.Placement())}
	if t.Locality != "" {
		c = append(c, str("locality"), str(t.Locality))
	}
	if t.Parent != nil {
		c = append(c, str("parent"), str(t.Parent.String()))
	}
	if len(t.SiteUnique) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for _, e := range sortedCopy(t.SiteUnique) {
			if cols := strings.Split(e, ","); len(cols) > 1 {
				inner := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
				for _, col := range cols {
					inner.Content = append(inner.Content, str(col))
				}
				seq.Content = append(seq.Content, inner)
			} else {
				seq.Content = append(seq.Content, str(e))
			}
		}
		c = append(c, str("site_unique"), seq)
	}
	if t.Kind == Global {
		if t.Staleness != DefaultStaleness {
			c = append(c, str("staleness"), str(t.Staleness.String()))
		}
		if t.Strict {
			c = append(c, str("strict"), &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		}
	}
	return c
}
