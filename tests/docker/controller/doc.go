// Command controller is the compose example's controller: a stand-in for a
// service of a control plane, which talks MySQL to the fogdb sidecar
// sharing its network namespace, at 127.0.0.1:3306, exactly as it would to
// a local MySQL. Every interval it records one event of its site (a local
// table: its rows live at the site that wrote them), refreshes its site's
// heartbeat (a global table: one consensus round across sites), counts the
// events of every site it can read, and prints what it saw as one JSON
// line.
//
// Configuration is by environment: CONTROLLER_SITE (required),
// CONTROLLER_ADDR (127.0.0.1:3306), CONTROLLER_USER (root),
// CONTROLLER_PASSWORD, CONTROLLER_CA (a PEM CA file: TLS, verified; empty:
// no TLS), CONTROLLER_INTERVAL (1s).
package main
