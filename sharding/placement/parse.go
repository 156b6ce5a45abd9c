package placement

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the YAML nodes Parse visits, aliases expanded: a short
// file of nested aliases can otherwise stand for an enormous spec.
const maxNodes = 1 << 20

// Parse reads a placement file (docs/PLACEMENT.md) and validates it. Names
// are lower-cased; a global policy without a staleness gets
// DefaultStaleness. An empty file places everything global.
//
// Errors are Errors, each with the line and path of the mistake: every
// mistake in the file's structure (unknown fields, wrong types, unreadable
// values), or, when the structure is sound, every broken rule.
func Parse(data []byte) (*Spec, error) {
	p := &parser{pos: positions{}}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	s := &Spec{Default: Table{Kind: Global, Staleness: DefaultStaleness}}
	if root != nil {
		p.spec(root, s)
	}
	if len(p.errs) > 0 {
		// Rules are checked only on a sound structure: a field that could
		// not be read would otherwise be reported again as missing.
		p.errs.sortByPosition()
		return nil, p.errs
	}
	if errs := s.validate(p.pos); len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

type parser struct {
	pos     positions
	errs    Errors
	nodes   int
	tooBig  bool
	merging map[*yaml.Node]bool // mappings whose merge keys are being expanded
}

func (p *parser) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	p.errs = p.errs.add(e)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document returns the root node of the one document in data, or nil for a
// file with no content.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, Errors{syntaxError(err)}
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, Errors{{Line: next.Line, Column: next.Column, Msg: "a placement file holds one YAML document; this is a second"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, Errors{syntaxError(err)}
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		root = doc.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	return root, nil
}

func syntaxError(err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Line: line, Msg: "YAML: " + m[2]}
	}
	return &Error{Msg: "YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// resolve follows aliases and counts the node against the budget; nil means
// the budget is spent and the walk should stop.
func (p *parser) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	p.nodes++
	if p.nodes > maxNodes {
		if !p.tooBig {
			p.tooBig = true
			p.errorf(n, "", "the file expands to more than %d YAML nodes (aliases counted each time they are used)", maxNodes)
		}
		return nil
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an unexpected YAML node"
}

type field struct {
	key   string
	keyN  *yaml.Node
	value *yaml.Node
}

// fields returns the entries of a mapping, with YAML merge keys (<<)
// expanded: the mapping's own keys win over merged ones, and earlier merged
// mappings over later ones. A null stands for an empty mapping. A key given
// twice is an error, not a silent override.
func (p *parser) fields(n *yaml.Node, path string) []field {
	if n = p.resolve(n); n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "expected a mapping, got %s", describe(n))
		return nil
	}
	if p.merging[n] {
		p.errorf(n, path, "a merge key (<<) brings in the mapping that holds it")
		return nil
	}
	var own, merged []field
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			if p.merging == nil {
				p.merging = map[*yaml.Node]bool{}
			}
			p.merging[n] = true
			merged = append(merged, p.mergeSources(v, path)...)
			delete(p.merging, n)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
			p.errorf(k, path, "keys must be plain names, not %s", describe(k))
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			p.errorf(k, joinPath(path, k.Value), "given twice (first on line %d)", prev.Line)
			continue
		}
		seen[k.Value] = k
		own = append(own, field{k.Value, k, v})
	}
	for _, f := range merged {
		if _, ok := seen[f.key]; !ok {
			seen[f.key] = f.keyN
			own = append(own, f)
		}
	}
	return own
}

func (p *parser) mergeSources(v *yaml.Node, path string) []field {
	if v = p.resolve(v); v == nil {
		return nil
	}
	if v.Kind == yaml.SequenceNode {
		var out []field
		for _, m := range v.Content {
			out = append(out, p.fields(m, path)...)
		}
		return out
	}
	return p.fields(v, path)
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (p *parser) record(path string, n *yaml.Node) {
	if n != nil {
		p.pos[path] = position{n.Line, n.Column}
	}
}

func (p *parser) unknown(path string, f field, known string) {
	p.errorf(f.keyN, joinPath(path, f.key), "unknown field %q (known here: %s)", f.key, known)
}

// scalar returns the text of a scalar value as written.
func (p *parser) scalar(n *yaml.Node, path string) (string, bool) {
	if n = p.resolve(n); n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, path, "expected a value, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) spec(root *yaml.Node, s *Spec) {
	if n := p.resolve(root); n != nil && n.Kind != yaml.MappingNode {
		p.errorf(n, "", "a placement file is a mapping of default, databases and locality_map; got %s", describe(n))
		return
	}
	for _, f := range p.fields(root, "") {
		p.record(f.key, f.keyN)
		switch f.key {
		case "default":
			p.defaultPolicy(f, s)
		case "databases":
			p.databases(f.value, s)
		case "locality_map":
			p.localityMap(f.value, s)
		default:
			p.unknown("", f, "default, databases, locality_map")
		}
	}
}

// defaultPolicy reads "default: global" or a mapping of policy fields.
func (p *parser) defaultPolicy(f field, s *Spec) {
	v := p.resolve(f.value)
	if v == nil {
		return
	}
	if v.Kind == yaml.ScalarNode {
		p.record("default.placement", f.keyN)
		if t, ok := p.placement(v, "default"); ok {
			s.Default = t
		}
		return
	}
	t, _ := p.policyFields(v, "default", nil)
	s.Default = t
}

func (p *parser) databases(n *yaml.Node, s *Spec) {
	dbFirst := map[string]*yaml.Node{}
	for _, f := range p.fields(n, "databases") {
		name := strings.ToLower(f.key)
		path := "databases." + name
		if prev, dup := dbFirst[name]; dup {
			p.errorf(f.keyN, path, "database listed twice (first on line %d; names are case-insensitive)", prev.Line)
			continue
		}
		dbFirst[name] = f.keyN
		p.record(path, f.keyN)
		t, tables, hasPolicy := p.policyOrTables(f.value, path)
		db := Database{Tables: tables}
		if hasPolicy {
			db.Policy = &t
		}
		if s.Databases == nil {
			s.Databases = map[string]Database{}
		}
		s.Databases[name] = db
	}
}

func (p *parser) policyOrTables(n *yaml.Node, path string) (Table, map[string]Table, bool) {
	var tables map[string]Table
	t, set := p.policyFields(n, path, func(f field) bool {
		if f.key != "tables" {
			return false
		}
		tables = p.tables(f.value, path+".tables")
		return true
	})
	return t, tables, set
}

func (p *parser) tables(n *yaml.Node, path string) map[string]Table {
	out := map[string]Table{}
	first := map[string]*yaml.Node{}
	for _, f := range p.fields(n, path) {
		name := strings.ToLower(f.key)
		tPath := path + "." + name
		if prev, dup := first[name]; dup {
			p.errorf(f.keyN, tPath, "table listed twice (first on line %d; names are case-insensitive)", prev.Line)
			continue
		}
		first[name] = f.keyN
		p.record(tPath, f.keyN)
		t, _ := p.policyFields(f.value, tPath, nil)
		out[name] = t
	}
	return out
}

const policyFieldNames = "placement, locality, parent, site_unique, staleness, strict"

// policyFields reads the policy fields of a mapping; extra, when not nil,
// takes the fields that belong to the level (a database's tables) and
// reports whether it took one. It reports whether any policy field was
// given, so that a database entry with only tables has no policy.
func (p *parser) policyFields(n *yaml.Node, path string, extra func(field) bool) (Table, bool) {
	var t Table
	given := false
	known := policyFieldNames
	if extra != nil {
		known += ", tables"
	}
	stalenessSet := false
	for _, f := range p.fields(n, path) {
		fPath := path + "." + f.key
		if extra != nil && extra(f) {
			p.record(fPath, f.keyN)
			continue
		}
		p.record(fPath, f.keyN)
		switch f.key {
		case "placement":
			given = true
			if pl, ok := p.placement(f.value, fPath); ok {
				t.Kind, t.Site = pl.Kind, pl.Site
			}
		case "locality":
			given = true
			if v, ok := p.scalar(f.value, fPath); ok {
				t.Locality = strings.ToLower(v)
			}
		case "parent":
			given = true
			if v, ok := p.scalar(f.value, fPath); ok {
				if ref, ok := parseParent(v); ok {
					t.Parent = &ref
				} else {
					p.errorf(f.value, fPath, "expected TABLE(COLUMN) via COLUMN, as in \"instances(uuid) via instance_uuid\"; got %q", v)
				}
			}
		case "site_unique":
			given = true
			t.SiteUnique = p.siteUnique(f.value, fPath)
		case "staleness":
			given = true
			stalenessSet = true
			if v, ok := p.scalar(f.value, fPath); ok {
				d, err := time.ParseDuration(v)
				if err != nil {
					p.errorf(f.value, fPath, "%q is not a duration (write it with a unit: 0s, 500ms, 2s, 1m)", v)
				}
				t.Staleness = d
			}
		case "strict":
			given = true
			if v := p.resolve(f.value); v != nil {
				if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
					p.errorf(v, fPath, "expected true or false, got %s", describe(v))
				} else if err := v.Decode(&t.Strict); err != nil {
					p.errorf(v, fPath, "expected true or false, got %s", describe(v))
				}
			}
		default:
			p.unknown(path, f, known)
		}
	}
	if t.Kind == Global && !stalenessSet {
		t.Staleness = DefaultStaleness
	}
	return t, given
}

// placement reads "global", "local" or "site:NAME".
func (p *parser) placement(n *yaml.Node, fPath string) (Table, bool) {
	v, ok := p.scalar(n, fPath)
	if !ok {
		return Table{}, false
	}
	switch {
	case v == "global":
		return Table{Kind: Global, Staleness: DefaultStaleness}, true
	case v == "local":
		return Table{Kind: Local}, true
	case strings.HasPrefix(v, "site:"):
		// The site name is checked by Validate, with the other names.
		return Table{Kind: Site, Site: strings.TrimPrefix(v, "site:")}, true
	}
	p.errorf(n, fPath, "%q is not a placement: global, local or site:NAME", v)
	return Table{}, false
}

var parentForm = regexp.MustCompile(`^\s*([^\s()]+)\s*\(\s*([^\s()]+)\s*\)\s+(?i:via)\s+([^\s()]+)\s*$`)

func parseParent(s string) (ParentRef, bool) {
	m := parentForm.FindStringSubmatch(s)
	if m == nil {
		return ParentRef{}, false
	}
	return ParentRef{Table: strings.ToLower(m[1]), Column: strings.ToLower(m[2]), Via: strings.ToLower(m[3])}, true
}

// siteUnique reads a list whose entries are an index name, a column list
// written "a, b", or a list of columns [a, b]. Entries are kept in one
// form, lower case with columns joined by "," in the order written, and the
// list is sorted, so that equal specs compare equal.
func (p *parser) siteUnique(n *yaml.Node, path string) []string {
	if n = p.resolve(n); n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, path, "expected a list of index names or column lists, got %s", describe(n))
		return nil
	}
	var out []string
	for _, e := range n.Content {
		e = p.resolve(e)
		if e == nil {
			return nil
		}
		var cols []string
		switch {
		case e.Kind == yaml.SequenceNode:
			for _, c := range e.Content {
				if v, ok := p.scalar(c, path); ok {
					cols = append(cols, strings.TrimSpace(v))
				}
			}
			if len(e.Content) == 0 {
				p.errorf(e, path, "an empty column list")
				continue
			}
		default:
			v, ok := p.scalar(e, path)
			if !ok {
				continue
			}
			for c := range strings.SplitSeq(v, ",") {
				cols = append(cols, strings.TrimSpace(c))
			}
		}
		out = append(out, strings.ToLower(strings.Join(cols, ",")))
	}
	slices.Sort(out)
	return out
}

func (p *parser) localityMap(n *yaml.Node, s *Spec) {
	for _, f := range p.fields(n, "locality_map") {
		path := "locality_map[" + strconv.Quote(f.key) + "]"
		p.record(path, f.keyN)
		if site, ok := p.scalar(f.value, path); ok {
			if s.LocalityMap == nil {
				s.LocalityMap = map[string]string{}
			}
			s.LocalityMap[f.key] = site
		}
	}
}
