// Package wanem emulates a wide-area network between sites in user space,
// where kernel netem is not available: a TCP proxy whose links forward
// connections from a listen address to a target, tagged with the site the
// target is in and the site the connection comes from.
//
// Between every ordered pair of sites the proxy keeps a one-way delay, a
// jitter (drawn from a seeded generator, so a run can be replayed) and an
// optional bandwidth, changeable at runtime. Each chunk read from a sender
// is due at the far end at its arrival time plus the delay (after the
// chunks the path was given before, under a bandwidth limit), and a writer
// delivers the chunks of a stream in order once due: a stream is shifted by
// the delay, not throttled by it, and never reordered, even under jitter.
// FINs travel as the last chunk of their stream; resets are passed on as
// resets.
//
// A pair of sites, or a single link, can be cut in two modes: Blackhole
// holds every byte and every new connection until the cut heals (TCP
// retransmits, so a partition delays bytes rather than losing them; peers
// see silence and time out on their own deadlines), Reset resets every
// connection crossing the cut and each new one at once.
//
// A link's source site is either fixed (LinkConfig.From) or found per
// connection: from the proxy's Dialer, which in-process nodes use as their
// dial function, or from the connection's source address (SetSource), for
// processes in containers. So one link per node, which the node advertises
// as its peer address, gives every pair of sites its own delay, and nodes
// of one site talk without delay.
//
// Counters per link and direction (bytes, chunks, turns of the
// conversation) let tests assert how much crossed the WAN, and how many
// request/response exchanges did. The proxy cannot see the messages of the
// protocols it carries; turns are what it can count.
//
// Handler is an HTTP control endpoint (cut, heal, delay, jitter, bandwidth,
// links and counters); cmd/fogwan runs a proxy as a process with it.
//
// # Relation to tests/faultnet
//
// tests/faultnet breaks the network of in-process clusters from inside
// each node's dial hook: it refuses dials and severs connections between
// named nodes, and cannot delay anything. wanem is a separate package
// rather than an extension of it, because it must also run as its own
// process between nodes that have no dial hook (process-level tests, a
// container between sites), where a real proxy reached through the nodes'
// advertised peer addresses is the only way in; and because it reasons in
// sites, where faultnet reasons in nodes. The two compose: in-process test
// clusters keep faultnet's dial hook for cutting nodes apart and dial
// through wanem's Dialer underneath it, so that a cluster can have both
// node-level cuts and site-level delays and cuts. See DESIGN.md.
package wanem
