//go:build linux || darwin || freebsd || netbsd || openbsd

package replication

import (
	"errors"
	"syscall"
)

// peekAlive looks at the socket without reading from it or waiting: a
// pooled connection must have nothing to read (the peer answered its last
// request in full), so pending bytes, an end of stream or an error all
// mean it is not fit for another request.
func peekAlive(sc syscall.Conn) (alive, known bool) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var rerr error
	var n int
	var one [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readiness
	})
	if err != nil {
		return false, true
	}
	if errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK) {
		return true, true
	}
	_ = n // 0: the peer closed; more: bytes it should not have sent
	return false, true
}
