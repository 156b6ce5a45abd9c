//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package replication

import "syscall"

func peekAlive(syscall.Conn) (alive, known bool) { return false, false }
