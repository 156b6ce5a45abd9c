package placement

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// siteName is the form of a site name: it appears in node configuration,
// metrics labels and file names, so it is kept to DNS-label characters.
var siteName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidSiteName reports whether name can name a site.
func ValidSiteName(name string) bool { return siteName.MatchString(name) }

// maxIdentLen is MySQL's limit on database, table, column and index names,
// in characters.
const maxIdentLen = 64

// validIdent accepts the names MySQL accepts without quotes: ASCII letters,
// digits, '$' and '_', and the characters U+0080 to U+FFFF, not digits
// alone. Names that need quoting are refused rather than carried, so that
// a name in a placement file reads the same in SQL.
func validIdent(name string) bool {
	n := utf8.RuneCountInString(name)
	if n == 0 || n > maxIdentLen || !utf8.ValidString(name) {
		return false
	}
	digits := true
	for _, r := range name {
		switch {
		case r >= '0' && r <= '9':
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '$', r == '_',
			r >= 0x80 && r <= 0xFFFF:
			digits = false
		default:
			return false
		}
	}
	return !digits
}

const identRule = "letters, digits, '$' and '_' (not digits alone), at most 64 characters"

// level is where a policy stands in a spec: only tables have locality keys,
// parents and unique indexes.
type level int

const (
	levelDefault level = iota
	levelDatabase
	levelTable
)

// positions locates paths of a spec in the file it came from. A nil
// positions (a spec built in code) locates nothing and reports no field as
// present.
type positions map[string]position

type position struct{ line, col int }

func (p positions) has(path string) bool {
	_, ok := p[path]
	return ok
}

// at finds the line of path, or of the nearest enclosing path the file has.
func (p positions) at(path string) position {
	for path != "" {
		if pos, ok := p[path]; ok {
			return pos
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return position{}
}

type validator struct {
	pos  positions
	errs Errors
}

func (v *validator) errorf(path, format string, args ...any) {
	at := v.pos.at(path)
	v.errs = v.errs.add(&Error{Path: path, Line: at.line, Column: at.col, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks every rule of placement (see DESIGN.md) and returns
// Errors listing the broken ones, or nil.
func (s *Spec) Validate() error { return s.validate(nil).orNil() }

func (s *Spec) validate(pos positions) Errors {
	v := &validator{pos: pos}
	if s == nil {
		v.errorf("", "no spec")
		return v.errs
	}
	v.policy("default", s.Default, levelDefault)
	for _, dbName := range sortedKeys(s.Databases) {
		db := s.Databases[dbName]
		dbPath := "databases." + dbName
		v.name(dbPath, dbName, "database")
		if db.Policy == nil && len(db.Tables) == 0 {
			v.errorf(dbPath, "places nothing: give it a placement or tables")
		}
		if db.Policy != nil {
			v.policy(dbPath, *db.Policy, levelDatabase)
		}
		for _, tn := range sortedKeys(db.Tables) {
			tPath := dbPath + ".tables." + tn
			v.name(tPath, tn, "table")
			v.policy(tPath, db.Tables[tn], levelTable)
		}
		v.parents(s, dbName, dbPath)
	}
	for _, value := range sortedKeys(s.LocalityMap) {
		p := "locality_map[" + strconv.Quote(value) + "]"
		if !utf8.ValidString(value) {
			// The catalog form is JSON, which cannot carry it unchanged.
			v.errorf(p, "a locality value must be valid UTF-8")
		}
		if site := s.LocalityMap[value]; !ValidSiteName(site) {
			v.errorf(p, "%q is not a valid site name (%s)", site, siteRule)
		}
	}
	if pos != nil {
		v.errs.sortByPosition()
	}
	return v.errs
}

const siteRule = "lower-case letters, digits and '-', starting with a letter or digit, at most 63 characters"

func (v *validator) name(path, name, what string) {
	switch {
	case !validIdent(name):
		v.errorf(path, "%q is not a valid %s name (%s)", name, what, identRule)
	case strings.ToLower(name) != name:
		v.errorf(path, "%s name %q must be lower case", what, name)
	}
}

// policy checks the rules of one policy that need nothing else of the spec.
// A field counts when it is set or when the file wrote it, so that
// "staleness: 0s" on a local table is refused like "staleness: 2s".
func (v *validator) policy(path string, t Table, lvl level) {
	where := map[level]string{levelDefault: "the default", levelDatabase: "a database"}[lvl]
	switch t.Kind {
	case Global, Local:
	case Site:
		if !ValidSiteName(t.Site) {
			v.errorf(path+".placement", "%q is not a valid site name (%s)", t.Site, siteRule)
		}
	default:
		// The other fields depend on the kind: saying more would guess.
		v.errorf(path+".placement", "placement missing: global, local or site:NAME")
		return
	}
	if t.Kind != Site && t.Site != "" {
		v.errorf(path+".placement", "a site is given for %s placement", t.Kind)
	}

	locality := t.Locality != "" || v.pos.has(path+".locality")
	parent := t.Parent != nil || v.pos.has(path+".parent")
	siteUnique := len(t.SiteUnique) > 0 || v.pos.has(path+".site_unique")
	for _, f := range []struct {
		set  bool
		name string
	}{{locality, "locality"}, {parent, "parent"}, {siteUnique, "site_unique"}} {
		switch {
		case !f.set:
		case lvl != levelTable:
			v.errorf(path+"."+f.name, "%s belongs to a table, not to %s", f.name, where)
		case t.Kind != Local:
			v.errorf(path+"."+f.name, "%s applies to local placement only, not %s", f.name, t.Kind)
		}
	}
	if lvl == levelTable && t.Kind == Local {
		if locality && parent {
			v.errorf(path+".parent", "locality and parent are exclusive: a row has one home")
		}
		if locality {
			v.name(path+".locality", t.Locality, "column")
		}
		if t.Parent != nil {
			v.name(path+".parent", t.Parent.Table, "table")
			v.name(path+".parent", t.Parent.Column, "column")
			v.name(path+".parent", t.Parent.Via, "column")
		}
		v.siteUnique(path+".site_unique", t.SiteUnique)
	}

	if t.Staleness != 0 || v.pos.has(path+".staleness") {
		if t.Kind != Global {
			v.errorf(path+".staleness", "staleness applies to global placement only, not %s", t.Kind.String())
		} else if t.Staleness < 0 {
			v.errorf(path+".staleness", "staleness %s is negative", t.Staleness)
		}
	}
	if (t.Strict || v.pos.has(path+".strict")) && t.Kind != Global {
		v.errorf(path+".strict", "strict applies to global placement only, not %s", t.Kind.String())
	}
}

// siteUnique checks entries: an index name, or the columns of an index
// joined by commas without spaces, lower case, each listed once.
func (v *validator) siteUnique(path string, entries []string) {
	seen := map[string]bool{}
	for _, e := range entries {
		for col := range strings.SplitSeq(e, ",") {
			if !validIdent(col) || strings.ToLower(col) != col {
				v.errorf(path, "%q is neither an index name nor a comma-separated column list of lower-case names (%s)", e, identRule)
				break
			}
		}
		if seen[e] {
			v.errorf(path, "%q is listed twice", e)
		}
		seen[e] = true
	}
}

// parents checks that every parent names a local table of the same
// database and that following parents never comes back to where it
// started: a row's home must be found in a finite number of steps.
func (v *validator) parents(s *Spec, dbName, dbPath string) {
	db := s.Databases[dbName]
	const (
		unseen = iota
		walking
		done
	)
	state := map[string]int{}
	var chain []string
	var walk func(name string)
	walk = func(name string) {
		state[name] = walking
		chain = append(chain, name)
		t := db.Tables[name]
		p := t.Parent
		path := dbPath + ".tables." + name + ".parent"
		switch next, listed := db.Tables[p.Table]; {
		case p.Table == name:
			v.errorf(path, "table %s is its own parent", name)
		case listed && next.Kind == Local && next.Parent != nil:
			switch state[p.Table] {
			case unseen:
				walk(p.Table)
			case walking:
				cycle := slices.Concat(chain[slices.Index(chain, p.Table):], []string{p.Table})
				v.errorf(path, "parents form a cycle: %s", strings.Join(cycle, " → "))
			}
		default:
			if eff := s.Effective(dbName, p.Table); eff.Kind != Local {
				v.errorf(path, "parent %s is placed %s; a parent must be local", p.Table, eff.Placement())
			}
		}
		state[name] = done
		chain = chain[:len(chain)-1]
	}
	for _, name := range sortedKeys(db.Tables) {
		if t := db.Tables[name]; t.Kind == Local && t.Parent != nil && state[name] == unseen {
			walk(name)
		}
	}
}
