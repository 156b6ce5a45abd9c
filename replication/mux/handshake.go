package mux

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// Conversation kinds. A kind is never renumbered or reused; 0 is not a kind,
// so a zeroed header never routes anywhere.
const (
	// KindRaft carries one Raft group's traffic; the route also names the
	// group.
	KindRaft byte = 1
	// KindRPC carries node-to-node requests (forwarding to a leader, say).
	KindRPC byte = 2
)

const (
	magic           = "FOGM"
	protocolVersion = 1
	nonceSize       = 32
	macSize         = sha256.Size

	labelDial   = "dial"
	labelListen = "listen"
)

// Status the listener sends once it has checked the dialer's proof.
const (
	statusOK           byte = 0
	statusUnknownRoute byte = 1
	statusUnauthorized byte = 2
)

// route is where a connection is headed on the listening node.
type route struct {
	kind  byte
	group uint64 // meaningful for KindRaft only
}

// encode gives the route's wire form, which is also what both proofs bind,
// so a proof made for one route is worthless for another.
func (r route) encode() []byte {
	b := []byte{r.kind}
	if r.kind == KindRaft {
		b = binary.AppendUvarint(b, r.group)
	}
	return b
}

func (r route) String() string {
	if r.kind == KindRaft {
		return fmt.Sprintf("raft group %d", r.group)
	}
	return fmt.Sprintf("kind %d", r.kind)
}

// proof binds the secret to the other side's fresh nonce, the route and the
// prover's role. The role label keeps a listener's answer from being
// reflected back as a dialer's proof; the nonce is fixed-size and the route
// self-delimiting, so the concatenation is unambiguous.
func proof(secret, nonce, rt []byte, label string, extra ...byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(nonce)
	h.Write(rt)
	h.Write([]byte(label))
	h.Write(extra)
	return h.Sum(nil)
}

func newNonce() ([]byte, error) {
	n := make([]byte, nonceSize)
	if _, err := rand.Read(n); err != nil {
		return nil, fmt.Errorf("%w: nonce: %v", ErrHandshake, err)
	}
	return n, nil
}

// ioErr wraps an I/O failure so that callers can match ErrHandshake and
// still see a deadline (os.ErrDeadlineExceeded) or an early close.
func ioErr(step string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrHandshake, step, err)
}

// byteReader reads one byte per call, so that decoding the group ID never
// consumes bytes past the header, and keeps what it read.
type byteReader struct {
	r    io.Reader
	read []byte
}

func (b *byteReader) ReadByte() (byte, error) {
	var p [1]byte
	if _, err := io.ReadFull(b.r, p[:]); err != nil {
		return 0, err
	}
	b.read = append(b.read, p[0])
	return p[0], nil
}

// readRoute decodes the route and returns it with the exact bytes read,
// which both proofs bind.
func readRoute(conn io.Reader) (route, []byte, error) {
	br := &byteReader{r: conn}
	kind, err := br.ReadByte()
	if err != nil {
		return route{}, nil, ioErr("read route", err)
	}
	r := route{kind: kind}
	if kind != KindRaft {
		return r, br.read, nil
	}
	g, err := binary.ReadUvarint(br)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isNetErr(err) {
			return route{}, nil, ioErr("read group id", err)
		}
		return route{}, nil, fmt.Errorf("%w: group id: %v", ErrHandshake, err)
	}
	r.group = g
	// One route, one encoding: a padded varint would decode to the same
	// group yet be different bytes under the proofs.
	if !bytes.Equal(br.read, r.encode()) {
		return route{}, nil, fmt.Errorf("%w: non-minimal group id", ErrHandshake)
	}
	return r, br.read, nil
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// acceptHandshake runs the listener's side. routable says whether this node
// serves a route; it is asked only once the dialer has proved itself, so an
// outsider learns nothing about which routes exist. The caller sets the
// deadline.
// errProven marks a handshake that failed after the dialer proved the
// secret: a member, which spends no failure budget.
var errProven = errors.New("mux: the dialer proved the secret")

func acceptHandshake(conn io.ReadWriter, secret []byte, routable func(route) bool) (route, error) {
	var hdr [len(magic) + 1]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return route{}, ioErr("read magic", err)
	}
	if string(hdr[:len(magic)]) != magic {
		return route{}, fmt.Errorf("%w: % x", ErrBadMagic, hdr[:len(magic)])
	}
	if hdr[len(magic)] != protocolVersion {
		return route{}, fmt.Errorf("%w: %d", ErrBadVersion, hdr[len(magic)])
	}
	r, rt, err := readRoute(conn)
	if err != nil {
		return route{}, err
	}
	nl, err := newNonce()
	if err != nil {
		return route{}, err
	}
	if _, err := conn.Write(nl); err != nil {
		return route{}, ioErr("write nonce", err)
	}

	var answer [macSize + nonceSize]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return route{}, ioErr("read dialer proof", err)
	}
	if !hmac.Equal(answer[:macSize], proof(secret, nl, rt, labelDial)) {
		// Telling a dialer without the secret that its proof failed gives
		// away nothing it would not learn from the close.
		_, _ = conn.Write([]byte{statusUnauthorized})
		return route{}, fmt.Errorf("%w: dialer's proof does not match (%s)", ErrUnauthorized, r)
	}
	nd := answer[macSize:]

	status := statusOK
	if !routable(r) {
		status = statusUnknownRoute
	}
	reply := append([]byte{status}, proof(secret, nd, rt, labelListen, status)...)
	if _, err := conn.Write(reply); err != nil {
		return route{}, fmt.Errorf("%w: %w", errProven, ioErr("write listener proof", err))
	}
	if status == statusUnknownRoute {
		return route{}, fmt.Errorf("%w: %s", ErrUnknownRoute, r)
	}
	return r, nil
}

// dialHandshake runs the dialer's side. The caller sets the deadline.
func dialHandshake(conn io.ReadWriter, secret []byte, r route) error {
	rt := r.encode()
	hdr := make([]byte, 0, len(magic)+1+len(rt))
	hdr = append(hdr, magic...)
	hdr = append(hdr, protocolVersion)
	hdr = append(hdr, rt...)
	if _, err := conn.Write(hdr); err != nil {
		return ioErr("write header", err)
	}

	nl := make([]byte, nonceSize)
	if _, err := io.ReadFull(conn, nl); err != nil {
		return ioErr("read listener nonce", err)
	}
	nd, err := newNonce()
	if err != nil {
		return err
	}
	answer := append(proof(secret, nl, rt, labelDial), nd...)
	if _, err := conn.Write(answer); err != nil {
		return ioErr("write dialer proof", err)
	}

	var status [1]byte
	if _, err := io.ReadFull(conn, status[:]); err != nil {
		return ioErr("read status", err)
	}
	switch status[0] {
	case statusOK, statusUnknownRoute:
	case statusUnauthorized:
		return fmt.Errorf("%w: the listener refused this node's proof (is the cluster secret the same?)", ErrUnauthorized)
	default:
		return fmt.Errorf("%w: unknown status %d", ErrHandshake, status[0])
	}
	mac := make([]byte, macSize)
	if _, err := io.ReadFull(conn, mac); err != nil {
		return ioErr("read listener proof", err)
	}
	if !hmac.Equal(mac, proof(secret, nd, rt, labelListen, status[0])) {
		return fmt.Errorf("%w: the listener's proof does not match", ErrUnauthorized)
	}
	if status[0] == statusUnknownRoute {
		return fmt.Errorf("%w: %s", ErrUnknownRoute, r)
	}
	return nil
}
