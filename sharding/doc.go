// Package sharding places data on sites: the registry of sites and nodes
// kept in the global group's catalog, the voters each group should have,
// and how a node finds or founds its site's group.
//
// A node hosts two groups over its one peer port: the global group (ID 1,
// the catalog and shared tables; voters spread over sites, every other
// node a non-voting replica) and its site's group (the rows homed at that
// site; voters only from that site). The registry is ordinary catalog data
// of the global group, so every node reads it from its own replica.
// DESIGN.md describes the records and the placement of voters.
package sharding
