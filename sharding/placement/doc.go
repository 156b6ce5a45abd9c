// Package placement is fogdb's placement model: where the rows of each
// table live, as an operator declares it in a placement file, as the
// catalog stores it, and as the server applies it to one row.
//
// A Spec holds a default placement, per-database and per-table policies
// (Table) and a locality map. A policy is one of
//
//	global      one copy in the global group, read from every node's replica
//	site:NAME   every row in the group of site NAME
//	local       each row in the group of its home site, found from a
//	            locality column, from a parent row, or from the site that
//	            inserted it
//
// The package owns the placement file format (Parse, MarshalYAML), its
// rules (Validate), the catalog form (Marshal, Unmarshal: an on-disk format,
// versioned; see DESIGN.md beside this file), the resolution of a table's
// policy (Spec.Effective), the comparison of two specs that tells the
// server whether a change would move rows (Diff, DiffLocalityMap, Moves),
// and the rule that homes a row (HomeSite).
//
// It knows neither schemas nor sites: whether a locality column exists,
// whether a parent column is unique and whether a named site is part of the
// cluster are checked by the server against its catalog (Spec.Sites lists
// the sites a spec names). It imports nothing of the project, so the
// server, the router and the admin CLI can all use it.
//
// User documentation of the file: docs/PLACEMENT.md. A reference placement
// for OpenStack: docs/placement/openstack.yaml.
package placement
