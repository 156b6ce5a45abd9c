package replication

import (
	"encoding/binary"
	"fmt"

	"github.com/fogdb/fogdb/kv"
)

// CommandType is the first byte of every Raft log entry this package writes.
// A value is never renumbered or reused: a log written by one build is
// replayed by later ones.
type CommandType uint8

const (
	// Zero is never a command, so an entry of zero bytes is caught as garbage.
	_ CommandType = 0

	// CommandCommit carries batches, each with the commit timestamp the
	// leader chose for it.
	CommandCommit CommandType = 1

	// CommandClusterID names the cluster whose log this is; the first one
	// applied is stored in the state file with the applied index.
	CommandClusterID CommandType = 2
)

// clusterIDSize is the length of the cluster IDs this build makes; decoding
// accepts any length from 1 to kv.MaxClusterIDSize.
const clusterIDSize = 16

// EncodeClusterID builds a CommandClusterID entry.
func EncodeClusterID(id []byte) ([]byte, error) {
	if len(id) == 0 || len(id) > kv.MaxClusterIDSize {
		return nil, fmt.Errorf("%w: cluster ID of %d bytes", ErrBadCommand, len(id))
	}
	return appendBytes([]byte{byte(CommandClusterID)}, id), nil
}

// DecodeClusterID decodes the payload of a CommandClusterID entry (without
// its type byte); the ID aliases payload.
func DecodeClusterID(payload []byte) ([]byte, error) {
	d := decoder{buf: payload}
	id := d.bytes()
	switch {
	case d.err != nil:
		return nil, d.err
	case len(d.buf) > 0:
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(d.buf))
	case len(id) == 0 || len(id) > kv.MaxClusterIDSize:
		return nil, fmt.Errorf("%w: cluster ID of %d bytes", ErrBadCommand, len(id))
	}
	return id, nil
}

// Flags of an encoded mutation.
const (
	mutationDelete = 0x01
)

// Commit is the payload of CommandCommit: Batches[i] commits at TS[i].
type Commit struct {
	Batches []*kv.Batch
	TS      []kv.Timestamp
}

// EncodeCommit builds a CommandCommit entry. The batches are copied into the
// result, so the caller may reuse them.
func EncodeCommit(c Commit) ([]byte, error) {
	if len(c.Batches) != len(c.TS) {
		return nil, fmt.Errorf("%w: %d batches but %d timestamps", kv.ErrInvalidBatch, len(c.Batches), len(c.TS))
	}
	size := 1 + binary.MaxVarintLen64
	for i, b := range c.Batches {
		if b == nil {
			return nil, fmt.Errorf("%w: batch %d is nil", kv.ErrInvalidBatch, i)
		}
		size += 8 + 2*binary.MaxVarintLen64
		for _, m := range b.Mutations {
			size += 1 + 2*binary.MaxVarintLen64 + len(m.Key) + len(m.Value)
		}
		for _, p := range b.Preconditions {
			size += 1 + binary.MaxVarintLen64 + len(p.Key) + 8
		}
	}
	buf := make([]byte, 0, size)
	buf = append(buf, byte(CommandCommit))
	buf = binary.AppendUvarint(buf, uint64(len(c.Batches)))
	for i, b := range c.Batches {
		buf = binary.BigEndian.AppendUint64(buf, uint64(c.TS[i]))
		buf = binary.AppendUvarint(buf, uint64(len(b.Mutations)))
		for _, m := range b.Mutations {
			var flags byte
			if m.Delete {
				flags |= mutationDelete
			}
			buf = append(buf, flags)
			buf = appendBytes(buf, m.Key)
			if !m.Delete {
				buf = appendBytes(buf, m.Value)
			}
		}
		buf = binary.AppendUvarint(buf, uint64(len(b.Preconditions)))
		for _, p := range b.Preconditions {
			var exists byte
			if p.Exists {
				exists = 1
			}
			buf = append(buf, exists)
			buf = appendBytes(buf, p.Key)
			buf = binary.BigEndian.AppendUint64(buf, uint64(p.Version))
		}
	}
	return buf, nil
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

// DecodeCommand splits an entry into its type and payload. An empty entry or
// a type this build does not know is an error wrapping ErrBadCommand.
func DecodeCommand(data []byte) (CommandType, []byte, error) {
	if len(data) == 0 {
		return 0, nil, fmt.Errorf("%w: empty entry", ErrBadCommand)
	}
	t := CommandType(data[0])
	if _, ok := commandHandlers[t]; !ok {
		return 0, nil, fmt.Errorf("%w: unknown command type %d", ErrBadCommand, t)
	}
	return t, data[1:], nil
}

// DecodeCommit decodes the payload of a CommandCommit entry (without its type
// byte). Keys and values alias payload. It never panics: truncated input,
// counts larger than the input could hold, unknown flags and trailing bytes
// are errors wrapping ErrBadCommand.
func DecodeCommit(payload []byte) (Commit, error) {
	d := decoder{buf: payload}
	// Every batch takes at least 10 bytes, so a count above len/10 is a lie
	// that would otherwise make us allocate whatever garbage asks for.
	n := d.count(10)
	c := Commit{Batches: make([]*kv.Batch, 0, n), TS: make([]kv.Timestamp, 0, n)}
	for i := 0; i < n && d.err == nil; i++ {
		ts := kv.Timestamp(d.u64())
		b := &kv.Batch{}
		nm := d.count(2)
		if nm > 0 {
			b.Mutations = make([]kv.Mutation, 0, nm)
		}
		for j := 0; j < nm && d.err == nil; j++ {
			flags := d.byte()
			if flags&^mutationDelete != 0 {
				d.fail("mutation flags %#x", flags)
				break
			}
			m := kv.Mutation{Key: d.bytes(), Delete: flags&mutationDelete != 0}
			if !m.Delete {
				m.Value = d.bytes()
			}
			b.Mutations = append(b.Mutations, m)
		}
		np := d.count(10)
		if np > 0 {
			b.Preconditions = make([]kv.Precondition, 0, np)
		}
		for j := 0; j < np && d.err == nil; j++ {
			exists := d.byte()
			if exists > 1 {
				d.fail("precondition exists flag %d", exists)
				break
			}
			p := kv.Precondition{Exists: exists == 1, Key: d.bytes()}
			p.Version = kv.Timestamp(d.u64())
			b.Preconditions = append(b.Preconditions, p)
		}
		c.Batches = append(c.Batches, b)
		c.TS = append(c.TS, ts)
	}
	if d.err == nil && len(d.buf) != 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	if d.err != nil {
		return Commit{}, d.err
	}
	return c, nil
}

// decoder reads the envelope's primitives; the first failure sticks and makes
// every later read return zero values, so callers check once at the end.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadCommand, fmt.Sprintf(format, args...))
	}
	d.buf = nil
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 1 {
		d.fail("truncated")
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 8 {
		d.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 || (n > 1 && d.buf[n-1] == 0) {
		// A non-minimal varint would give one command two encodings.
		d.fail("bad varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// count reads an element count whose elements take at least minSize bytes
// each, and refuses one the rest of the input cannot hold.
func (d *decoder) count(minSize int) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > uint64(len(d.buf)/minSize) {
		d.fail("count %d exceeds the %d bytes left", v, len(d.buf))
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.fail("length %d exceeds the %d bytes left", n, len(d.buf))
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}
