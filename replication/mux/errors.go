package mux

import "errors"

var (
	// ErrInvalidConfig is wrapped by the errors of Config.Validate and of
	// New when the listener's address cannot be advertised.
	ErrInvalidConfig = errors.New("mux: invalid config")

	// ErrBadMagic means the peer does not speak this protocol at all: its
	// first bytes are not the mux magic.
	ErrBadMagic = errors.New("mux: bad magic")

	// ErrBadVersion means the peer speaks a version of the protocol this
	// build does not know.
	ErrBadVersion = errors.New("mux: unsupported protocol version")

	// ErrUnauthorized means a side failed to prove that it knows the cluster
	// secret, or the listener refused the dialer's proof.
	ErrUnauthorized = errors.New("mux: unauthorized")

	// ErrUnknownRoute means the peer authenticated but nothing on the
	// listening node serves the requested route (no such group, no handler
	// for the kind).
	ErrUnknownRoute = errors.New("mux: unknown route")

	// ErrHandshake means the handshake broke off: an I/O error, the
	// handshake deadline, or bytes that break the protocol. When the
	// deadline was the cause, the error also matches os.ErrDeadlineExceeded.
	ErrHandshake = errors.New("mux: handshake failed")

	// ErrClosed is returned by Serve, Accept and Dial once the Mux (or, for
	// Accept and Dial of a raft layer, the layer) is closed.
	ErrClosed = errors.New("mux: closed")
)
