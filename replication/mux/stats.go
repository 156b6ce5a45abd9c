package mux

import "sync/atomic"

// Stats counts the connections a Mux has accepted from its listener. Every
// connection ends in exactly one counter, so Accepted plus Rejected is the
// number of handshakes finished so far.
type Stats struct {
	// Accepted connections were handed to a raft layer or a handler.
	Accepted uint64
	// Rejected is the sum of the counters below.
	Rejected uint64

	// BadMagic counts peers that do not speak this protocol, or speak a
	// version this build does not know.
	BadMagic uint64
	// Unauthorized counts dialers whose proof did not match the secret.
	Unauthorized uint64
	// UnknownRoute counts authenticated connections nothing here serves.
	UnknownRoute uint64
	// Failed counts handshakes cut short: deadline, I/O error, malformed
	// route, or the Mux closing under them.
	Failed uint64
}

type counters struct {
	accepted, badMagic, unauthorized, unknownRoute, failed atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Accepted:     c.accepted.Load(),
		BadMagic:     c.badMagic.Load(),
		Unauthorized: c.unauthorized.Load(),
		UnknownRoute: c.unknownRoute.Load(),
		Failed:       c.failed.Load(),
	}
	s.Rejected = s.BadMagic + s.Unauthorized + s.UnknownRoute + s.Failed
	return s
}
