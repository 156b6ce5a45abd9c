// Package mux gives a node one TCP port for every conversation it has with
// other nodes: the Raft traffic of each of its groups, and node-to-node RPC.
// A header sent by the dialer names the route; before any route is reached,
// both sides prove that they know the cluster secret by HMAC-SHA256
// challenge and response, so the secret itself never crosses the wire.
// DESIGN.md beside this file is the reference for the wire protocol.
//
// A Mux owns the listener and is also the dialing side, since both ends need
// the secret and the handshake. (*Mux).RaftLayer(id) is a raft.StreamLayer
// for one group, ready for raft.NewNetworkTransport; (*Mux).Handle and
// (*Mux).Dial carry the other kinds of conversation.
//
// The handshake authenticates peers; it does not encrypt or protect what
// follows, so the port belongs on a network that is trusted not to tamper
// with traffic, or behind a tunnel that is.
package mux
