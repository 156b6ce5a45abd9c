package server

import (
	"errors"
	"net"
	"time"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/fogdb/fogdb/sqlfront"
)

// The MySQL protocol library reads a whole packet into memory before the
// handler sees it, so a client could make the node hold any amount. Each
// client connection is read through packetLimitConn, which follows the
// packet headers as they pass and refuses a packet longer than
// max_allowed_packet from its header, before its payload is read: MySQL's
// error 1153 goes to the client and the connection is closed, as MySQL
// does. The refused payload is read and dropped, not kept, so the client
// is not reset mid-write and reads the error.

var errPacketTooLarge = errors.New("server: packet over max_allowed_packet")

// discardDeadline bounds how long a refused packet's payload is drained.
const discardDeadline = 30 * time.Second

type packetLimitListener struct{ net.Listener }

func (l packetLimitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &packetLimitConn{Conn: c}, nil
}

// packetLimitConn follows the client's packets: a 4-byte header (3-byte
// little-endian length, sequence number), then the payload; a payload of
// 0xffffff bytes continues in the next packet.
type packetLimitConn struct {
	net.Conn
	hdr    [4]byte
	hdrN   int
	remain int   // payload bytes of the current packet still to come
	more   bool  // the current packet continues in the next
	total  int64 // bytes of the current logical packet so far
	seq    byte
	// tripped: the logical packet being read is over the limit; ended: it
	// has been read to its end.
	tripped, ended bool
	failed         bool
}

// Unwrap gives the socket to the code that watches for disconnects.
func (c *packetLimitConn) Unwrap() net.Conn { return c.Conn }

func globalMaxAllowedPacket() int64 {
	_, v, ok := sql.SystemVariables.GetGlobal("max_allowed_packet")
	if ok {
		switch n := v.(type) {
		case int64:
			return n
		case uint64:
			return int64(n)
		}
	}
	return sqlfront.DefaultMaxAllowedPacket
}

func (c *packetLimitConn) Read(b []byte) (int, error) {
	if c.failed {
		return 0, errPacketTooLarge
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.scan(b[:n])
		if c.tripped {
			c.refuse()
			return 0, errPacketTooLarge
		}
	}
	return n, err
}

// scan follows headers through p. Once a header takes the logical packet
// over the limit, the rest is only followed to where the packet ends.
func (c *packetLimitConn) scan(p []byte) {
	for i := 0; i < len(p); {
		if c.remain == 0 && c.hdrN < 4 {
			c.hdr[c.hdrN] = p[i]
			c.hdrN++
			i++
			if c.hdrN < 4 {
				continue
			}
			c.hdrN = 0
			length := int(c.hdr[0]) | int(c.hdr[1])<<8 | int(c.hdr[2])<<16
			c.seq = c.hdr[3]
			c.remain = length
			c.more = length == mysql.MaxPacketSize
			c.total += int64(length)
			if !c.tripped && c.total > globalMaxAllowedPacket() {
				c.tripped = true
			}
		} else {
			k := min(c.remain, len(p)-i)
			c.remain -= k
			i += k
		}
		if c.remain == 0 && c.hdrN == 0 && !c.more {
			c.total = 0
			if c.tripped {
				c.ended = true
				return
			}
		}
	}
}

// refuse drops the rest of the refused packet, then answers 1153.
func (c *packetLimitConn) refuse() {
	c.failed = true
	_ = c.Conn.SetReadDeadline(time.Now().Add(discardDeadline))
	buf := make([]byte, 64<<10)
	for !c.ended {
		n, err := c.Conn.Read(buf)
		if n > 0 {
			c.scan(buf[:n])
		}
		if err != nil {
			return
		}
	}
	msg := "Got a packet bigger than 'max_allowed_packet' bytes"
	code := uint16(mysql.ERNetPacketTooLarge)
	payload := append([]byte{0xff, byte(code), byte(code >> 8), '#'}, "08S01"+msg...)
	pkt := append([]byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), c.seq + 1}, payload...)
	_ = c.Conn.SetWriteDeadline(time.Now().Add(discardDeadline))
	_, _ = c.Conn.Write(pkt)
}
