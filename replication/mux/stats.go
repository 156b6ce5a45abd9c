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
	// Shed counts connections closed at accept because MaxHandshakes
	// were in progress.
	Shed uint64
	// Throttled counts connections closed at accept because their source
	// had spent its budget of failed handshakes.
	Throttled uint64

	// InHandshake is how many connections are in handshake now (not a
	// counter; not part of Rejected).
	InHandshake int
}

type counters struct {
	accepted, badMagic, unauthorized, unknownRoute, failed atomic.Uint64
	shed, throttled                                        atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Accepted:     c.accepted.Load(),
		BadMagic:     c.badMagic.Load(),
		Unauthorized: c.unauthorized.Load(),
		UnknownRoute: c.unknownRoute.Load(),
		Failed:       c.failed.Load(),
		Shed:         c.shed.Load(),
		Throttled:    c.throttled.Load(),
	}
	s.Rejected = s.BadMagic + s.Unauthorized + s.UnknownRoute + s.Failed + s.Shed + s.Throttled
	return s
}
