package placement

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// CatalogVersion is the version of the catalog form Marshal writes and the
// newest Unmarshal reads (DESIGN.md, "Catalog form").
const CatalogVersion = 1

// The catalog form has its own types, so that the Go types can change
// without changing bytes on disk, and the reverse needs a new version.
type catalogSpec struct {
	Version     int                        `json:"version"`
	Default     catalogTable               `json:"default"`
	Databases   map[string]catalogDatabase `json:"databases,omitempty"`
	LocalityMap map[string]string          `json:"locality_map,omitempty"`
}

type catalogDatabase struct {
	Policy *catalogTable           `json:"policy,omitempty"`
	Tables map[string]catalogTable `json:"tables,omitempty"`
}

type catalogTable struct {
	Placement   string         `json:"placement"`
	Site        string         `json:"site,omitempty"`
	Locality    string         `json:"locality,omitempty"`
	Parent      *catalogParent `json:"parent,omitempty"`
	SiteUnique  []string       `json:"site_unique,omitempty"`
	StalenessNS int64          `json:"staleness_ns,omitempty"`
	Strict      bool           `json:"strict,omitempty"`
}

type catalogParent struct {
	Table  string `json:"table"`
	Column string `json:"column"`
	Via    string `json:"via"`
}

// Marshal returns the catalog form of a valid spec: JSON, with map keys and
// site_unique entries sorted, so that equal specs give equal bytes and the
// catalog can tell a real change from a rewrite.
func Marshal(s *Spec) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c := catalogSpec{Version: CatalogVersion, Default: toCatalog(s.Default)}
	if len(s.Databases) > 0 {
		c.Databases = map[string]catalogDatabase{}
		for name, db := range s.Databases {
			var cd catalogDatabase
			if db.Policy != nil {
				t := toCatalog(*db.Policy)
				cd.Policy = &t
			}
			if len(db.Tables) > 0 {
				cd.Tables = map[string]catalogTable{}
				for tn, t := range db.Tables {
					cd.Tables[tn] = toCatalog(t)
				}
			}
			c.Databases[name] = cd
		}
	}
	if len(s.LocalityMap) > 0 {
		c.LocalityMap = s.LocalityMap
	}
	return json.Marshal(c)
}

func toCatalog(t Table) catalogTable {
	c := catalogTable{
		Placement:   t.Kind.String(),
		Site:        t.Site,
		Locality:    t.Locality,
		StalenessNS: int64(t.Staleness),
		Strict:      t.Strict,
	}
	if t.Parent != nil {
		c.Parent = &catalogParent{Table: t.Parent.Table, Column: t.Parent.Column, Via: t.Parent.Via}
	}
	if len(t.SiteUnique) > 0 {
		c.SiteUnique = sortedCopy(t.SiteUnique)
	}
	return c
}

// Unmarshal reads the catalog form. A version newer than CatalogVersion is
// ErrVersion; anything else that is not a valid spec in a known version is
// an error wrapping ErrInvalid. Unknown fields are refused: a field is
// never added to a version, only to a new one.
func Unmarshal(data []byte) (*Spec, error) {
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, catalogError("not a placement catalog entry: %v", err)
	}
	switch {
	case head.Version == nil:
		return nil, catalogError("no version")
	case *head.Version > CatalogVersion:
		return nil, fmt.Errorf("%w: version %d, this build reads up to %d", ErrVersion, *head.Version, CatalogVersion)
	case *head.Version < 1:
		return nil, catalogError("version %d", *head.Version)
	}
	// json.Unmarshal above has refused anything after the entry.
	var c catalogSpec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, catalogError("%v", err)
	}
	s := &Spec{}
	var err error
	if s.Default, err = fromCatalog(c.Default); err != nil {
		return nil, err
	}
	if len(c.Databases) > 0 {
		s.Databases = map[string]Database{}
	}
	for name, cd := range c.Databases {
		var db Database
		if cd.Policy != nil {
			t, err := fromCatalog(*cd.Policy)
			if err != nil {
				return nil, err
			}
			db.Policy = &t
		}
		if len(cd.Tables) > 0 {
			db.Tables = map[string]Table{}
		}
		for tn, ct := range cd.Tables {
			if db.Tables[tn], err = fromCatalog(ct); err != nil {
				return nil, err
			}
		}
		s.Databases[name] = db
	}
	if len(c.LocalityMap) > 0 {
		s.LocalityMap = c.LocalityMap
	}
	// A stored spec was valid when it was written; one that is not now is
	// damaged, or older than a rule, which a rule must never be (DESIGN.md).
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func fromCatalog(c catalogTable) (Table, error) {
	t := Table{
		Site:       c.Site,
		Locality:   c.Locality,
		SiteUnique: slices.Clone(c.SiteUnique),
		Staleness:  time.Duration(c.StalenessNS),
		Strict:     c.Strict,
	}
	switch c.Placement {
	case "global":
		t.Kind = Global
	case "local":
		t.Kind = Local
	case "site":
		t.Kind = Site
	default:
		return Table{}, catalogError("placement %q", c.Placement)
	}
	if c.Parent != nil {
		t.Parent = &ParentRef{Table: c.Parent.Table, Column: c.Parent.Column, Via: c.Parent.Via}
	}
	return t, nil
}

func catalogError(format string, args ...any) error {
	return &Error{Msg: "catalog form: " + fmt.Sprintf(format, args...)}
}
