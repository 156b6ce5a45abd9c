package replication

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
	"github.com/fogdb/fogdb/replication/mux"
)

// Node-to-node requests travel on mux.KindRPC connections. A connection
// carries one request at a time and is reused; see DESIGN.md, "Requests
// between nodes", for the frames.

// Method names a request kind. Values below 32 belong to this package;
// packages above register theirs with Group.Handle from 32 up. A method is
// never renumbered.
type Method uint8

const (
	methodCommit    Method = 1
	methodReadIndex Method = 2
	methodLock      Method = 3
	methodRelease   Method = 4
	methodKeepalive Method = 5
	methodJoin      Method = 6
	methodRemove    Method = 7
	// methodVersion is answered by any member, leader or not.
	methodVersion Method = 8
	// Requests of nodes that do not host the group (Remote).
	methodSnapshot        Method = 9
	methodReleaseSnapshot Method = 10
	methodGet             Method = 11
	methodScan            Method = 12
	// Several locks in one request, and locks taken with a commit.
	methodLockAll    Method = 13
	methodLockCommit Method = 14

	// FirstUserMethod is the lowest Method a package above may register.
	FirstUserMethod Method = 32
)

// maxFrame bounds one request or response; a commit larger than this cannot
// be forwarded (the SQL layer's transaction limit is far below it).
const maxFrame = 1 << 30

// rpcIdleConns is how many idle connections to one peer are kept for reuse.
const rpcIdleConns = 32

// Wire error codes: the errors a caller must be able to tell apart survive
// the trip as themselves.
const (
	errCodeOther          = 1
	errCodeNotLeader      = 2
	errCodeUnavailable    = 3
	errCodeOutcomeUnknown = 4
	errCodeLockTimeout    = 5
	errCodeDeadlock       = 6
	errCodeLockAborted    = 7
	errCodeRejected       = 8
	errCodeNoMethod       = 9
	errCodeNoSuchMember   = 10
	errCodeInvalidBatch   = 11
	errCodeKeyTooLarge    = 12
	errCodeSnapshotLost   = 13
)

// errNotSent marks a failure before any byte of the request left this node:
// the request certainly had no effect and may be sent elsewhere.
var errNotSent = errors.New("request not sent")

// errTransport marks a failed exchange, as opposed to an answer.
var errTransport = errors.New("transport")

// RemoteError is an error a peer's handler returned that has no sentinel of
// its own here.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return e.Msg }

func encodeError(err error) []byte {
	code := byte(errCodeOther)
	var nl *NotLeaderError
	switch {
	case errors.As(err, &nl):
		code = errCodeNotLeader
		b := []byte{code}
		b = appendBytes(b, []byte(nl.LeaderAddr))
		return appendBytes(b, []byte(nl.LeaderID))
	case errors.Is(err, ErrSnapshotLost):
		code = errCodeSnapshotLost
	case errors.Is(err, ErrUnavailable):
		code = errCodeUnavailable
	case errors.Is(err, ErrOutcomeUnknown):
		code = errCodeOutcomeUnknown
	case errors.Is(err, lock.ErrTimeout):
		code = errCodeLockTimeout
	case errors.Is(err, lock.ErrDeadlock):
		code = errCodeDeadlock
	case errors.Is(err, lock.ErrAborted):
		code = errCodeLockAborted
	case errors.Is(err, ErrRejected):
		code = errCodeRejected
	case errors.Is(err, errNoMethod):
		code = errCodeNoMethod
	case errors.Is(err, ErrNoSuchMember):
		code = errCodeNoSuchMember
	case errors.Is(err, kv.ErrKeyTooLarge):
		code = errCodeKeyTooLarge
	case errors.Is(err, kv.ErrInvalidBatch):
		code = errCodeInvalidBatch
	}
	return appendBytes([]byte{code}, []byte(err.Error()))
}

var errNoMethod = errors.New("replication: no handler for method")

func decodeError(b []byte) error {
	d := decoder{buf: b}
	code := d.byte()
	if code == errCodeNotLeader {
		addr, id := d.bytes(), d.bytes()
		if d.err != nil {
			return fmt.Errorf("replication: bad error frame: %w", d.err)
		}
		return &NotLeaderError{LeaderAddr: raftAddr(addr), LeaderID: raftID(id)}
	}
	msg := string(d.bytes())
	if d.err != nil {
		return fmt.Errorf("replication: bad error frame: %w", d.err)
	}
	remote := &RemoteError{Msg: msg}
	switch code {
	case errCodeUnavailable:
		return fmt.Errorf("%w: %v", ErrUnavailable, remote)
	case errCodeSnapshotLost:
		return fmt.Errorf("%w: %w: %v", ErrSnapshotLost, ErrUnavailable, remote)
	case errCodeOutcomeUnknown:
		return fmt.Errorf("%w: %v", ErrOutcomeUnknown, remote)
	case errCodeLockTimeout:
		return lock.ErrTimeout
	case errCodeDeadlock:
		return lock.ErrDeadlock
	case errCodeLockAborted:
		return lock.ErrAborted
	case errCodeRejected:
		return fmt.Errorf("%w: %v", ErrRejected, remote)
	case errCodeNoMethod:
		return fmt.Errorf("%w: %v", errNoMethod, remote)
	case errCodeNoSuchMember:
		return fmt.Errorf("%w: %v", ErrNoSuchMember, remote)
	case errCodeInvalidBatch:
		return fmt.Errorf("%w: %v", kv.ErrInvalidBatch, remote)
	case errCodeKeyTooLarge:
		return fmt.Errorf("%w: %w: %v", kv.ErrInvalidBatch, kv.ErrKeyTooLarge, remote)
	}
	return remote
}

// request frame:  u32 length ‖ u64 group ‖ u8 method ‖ u64 caller's applied index ‖ payload
// response frame: u32 length ‖ u8 status (0 ok, 1 error) ‖ payload
const reqHeader = 8 + 1 + 8

func writeFrame(w io.Writer, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > maxFrame {
		return fmt.Errorf("replication: frame of %d bytes is over the %d limit", n, maxFrame)
	}
	buf := make([]byte, 4, 4+n)
	binary.BigEndian.PutUint32(buf, uint32(n))
	for _, p := range parts {
		buf = append(buf, p...)
	}
	_, err := w.Write(buf)
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("replication: frame of %d bytes is over the %d limit", n, maxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// rpcClient sends requests to other nodes over pooled mux connections.
type rpcClient struct {
	mux   *mux.Mux
	sites *siteBook
	wan   *wanCounters

	mu   sync.Mutex
	idle map[string][]net.Conn
}

func newRPCClient(m *mux.Mux, sites *siteBook, wan *wanCounters) *rpcClient {
	return &rpcClient{mux: m, sites: sites, wan: wan, idle: map[string][]net.Conn{}}
}

func (c *rpcClient) get(ctx context.Context, addr string) (net.Conn, error) {
	for {
		c.mu.Lock()
		list := c.idle[addr]
		if len(list) == 0 {
			c.mu.Unlock()
			break
		}
		conn := list[len(list)-1]
		c.idle[addr] = list[:len(list)-1]
		c.mu.Unlock()
		if alive(conn) {
			return conn, nil
		}
		conn.Close()
	}
	conn, err := c.mux.Dial(ctx, addr, mux.KindRPC)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %w", errTransport, errNotSent, err)
	}
	return conn, nil
}

// alive checks that the peer has not closed a pooled connection (it
// restarted, say), so a request is not written into a dead connection whose
// failure could not be told from a lost answer. A read with a deadline
// already past cannot tell: Go fails it before looking at the socket. So
// the socket is peeked at without waiting where the platform allows, and
// otherwise given a millisecond to report a close.
func alive(conn net.Conn) bool {
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if sc, ok := raw.(syscall.Conn); ok {
		if ok, known := peekAlive(sc); known {
			return ok
		}
	}
	if err := conn.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		return false
	}
	var one [1]byte
	_, err := conn.Read(one[:])
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return false // data the peer should not have sent, EOF or a reset
	}
	return conn.SetReadDeadline(time.Time{}) == nil
}

func (c *rpcClient) put(addr string, conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle[addr]) >= rpcIdleConns {
		conn.Close()
		return
	}
	c.idle[addr] = append(c.idle[addr], conn)
}

// closeIdle drops pooled connections (to a peer that went away, or at
// shutdown).
func (c *rpcClient) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, list := range c.idle {
		for _, conn := range list {
			conn.Close()
		}
		delete(c.idle, addr)
	}
}

// call sends one request and waits for its answer or ctx. Giving up on ctx
// closes the connection, which cancels the handler at the other end. It
// counts one call on ctx's counters (none for background work), and one
// WAN round trip when addr is at another site (wanCounters.count).
func (c *rpcClient) call(ctx context.Context, addr string, group uint64, m Method, applied uint64, payload []byte) ([]byte, error) {
	if !isBackground(ctx) {
		countCall(ctx)
	}
	if c.sites.crossSite(addr) {
		c.wan.count(ctx, 1)
	}
	conn, err := c.get(ctx, addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	hdr := make([]byte, reqHeader)
	binary.BigEndian.PutUint64(hdr, group)
	hdr[8] = byte(m)
	binary.BigEndian.PutUint64(hdr[9:], applied)
	if err := writeFrame(conn, hdr, payload); err != nil {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		// A pooled connection the peer already closed fails here; the
		// peer never read the request, but a partial write cannot be told
		// from a full one, so only a fresh dial failure counts as not sent.
		return nil, fmt.Errorf("%w: request to %s: %w", errTransport, addr, err)
	}
	resp, err := readFrame(bufio.NewReader(conn))
	if !stop() || err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("%w: response from %s: %w", errTransport, addr, err)
	}
	c.put(addr, conn)
	if len(resp) == 0 {
		return nil, fmt.Errorf("replication: empty response from %s", addr)
	}
	if resp[0] != 0 {
		return nil, decodeError(resp[1:])
	}
	return resp[1:], nil
}

// rpcServer answers requests on mux.KindRPC connections.
type rpcServer struct {
	logger hclog.Logger
	lookup func(group uint64) *Group
}

func (s *rpcServer) serve(conn net.Conn) {
	r := bufio.NewReader(conn)
	for {
		req, err := readFrame(r)
		if err != nil {
			return
		}
		if len(req) < reqHeader {
			s.logger.Warn("short request frame", "remote", conn.RemoteAddr().String())
			return
		}
		group := binary.BigEndian.Uint64(req)
		m := Method(req[8])
		applied := binary.BigEndian.Uint64(req[9:])
		payload := req[reqHeader:]

		// The caller closes the connection when it gives up; a read that
		// returns while the handler runs means exactly that. What the
		// handler waits for is the caller's: its node counts it, from the
		// answer where the answer carries it, and this one does not.
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), spentForKey{}, true))
		gone := make(chan bool, 1)
		go func() {
			_, err := r.Peek(1)
			var ne net.Error
			timedOut := errors.As(err, &ne) && ne.Timeout()
			if !timedOut {
				cancel()
			}
			gone <- !timedOut
		}()
		var resp []byte
		var herr error
		if g := s.lookup(group); g == nil {
			// Starting or stopping: answer as a node that does not lead
			// and knows no leader, so the caller looks again.
			herr = &NotLeaderError{}
		} else {
			resp, herr = g.serveRPC(ctx, m, applied, payload)
		}
		_ = conn.SetReadDeadline(time.Unix(1, 0))
		closed := <-gone
		cancel()
		if closed {
			return
		}
		_ = conn.SetReadDeadline(time.Time{})
		if herr != nil {
			err = writeFrame(conn, []byte{1}, encodeError(herr))
		} else {
			err = writeFrame(conn, []byte{0}, resp)
		}
		if err != nil {
			return
		}
	}
}
