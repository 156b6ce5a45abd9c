package kv

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// iterChunkSize is how many visible entries an Iterator gathers per read
// transaction. A variable so tests can force chunk boundaries.
var iterChunkSize = 128

// iterExamineFactor bounds the entries examined per chunk (a multiple of the
// chunk size), so a range full of deletions still yields the read
// transaction regularly.
const iterExamineFactor = 8

// Iterator walks the live keys of a range as of a timestamp. It reads in
// chunks, each in its own short bbolt read transaction, resuming after the
// last key it examined; no transaction stays open between Next calls. Keys
// committed between chunks with a timestamp above the iterator's are never
// visible, so the result is a consistent view as long as the timestamp is
// held by a Snapshot.
type Iterator struct {
	e          *Engine
	start, end []byte
	ts         Timestamp
	reverse    bool

	chunk  []iterEntry
	buf    []byte // keys and values of chunk
	pos    int
	resume []byte // last key examined; the next chunk starts past it
	begun  bool   // resume is valid
	done   bool   // no chunk after the current one
	err    error
	closed bool
}

type iterEntry struct {
	key, val [2]int // offsets into buf: start, end
	version  Timestamp
}

// NewIterator iterates the live keys in [start, end) as of ts (end nil:
// unbounded), ascending, or descending when reverse is set. Call Next before
// the first Key.
func (e *Engine) NewIterator(start, end []byte, ts Timestamp, reverse bool) *Iterator {
	return &Iterator{
		e:       e,
		start:   bytes.Clone(start),
		end:     bytes.Clone(end),
		ts:      ts,
		reverse: reverse,
		pos:     -1,
	}
}

// Next advances to the next live key and reports whether there is one.
func (it *Iterator) Next() bool {
	if it.err != nil || it.closed {
		return false
	}
	it.pos++
	for it.pos >= len(it.chunk) {
		if it.done {
			return false
		}
		if err := it.fill(); err != nil {
			it.err = err
			return false
		}
		it.pos = 0
	}
	return true
}

// Key returns the current key, valid until the next call to Next.
func (it *Iterator) Key() []byte {
	r := it.chunk[it.pos].key
	return it.buf[r[0]:r[1]:r[1]]
}

// Value returns the current value, valid until the next call to Next.
func (it *Iterator) Value() []byte {
	r := it.chunk[it.pos].val
	return it.buf[r[0]:r[1]:r[1]]
}

// Version returns the commit timestamp of the current value.
func (it *Iterator) Version() Timestamp { return it.chunk[it.pos].version }

// Err returns the error that ended the iteration, if any.
func (it *Iterator) Err() error { return it.err }

// Close releases the iterator's buffers. It holds no transaction, so it is
// cheap, and idempotent.
func (it *Iterator) Close() {
	it.closed = true
	it.chunk, it.buf, it.resume = nil, nil, nil
}

// fill replaces the chunk with the next entries, in one read transaction.
func (it *Iterator) fill() error {
	it.chunk, it.buf = it.chunk[:0], it.buf[:0]
	tx, err := it.e.db.Begin(false)
	if err != nil {
		return boltErr(err)
	}
	defer func() { _ = tx.Rollback() }()
	latest, history := tx.Bucket(bucketLatest), tx.Bucket(bucketHistory)
	if latest == nil || history == nil {
		return fmt.Errorf("%w: data buckets missing", ErrCorrupt)
	}
	c := latest.Cursor()
	k, v := it.first(c)
	examined, limit := 0, iterChunkSize*iterExamineFactor
	var last []byte
	for ; k != nil; k, v = it.step(c) {
		if !it.inRange(k) {
			break
		}
		last = k
		examined++
		ts, flag, val, err := decodeLatest(v)
		if err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		if ts > it.ts {
			var found bool
			examined++
			flag, val, ts, found, err = historyAt(history, k, it.ts)
			if err != nil {
				return err
			}
			if !found {
				flag = flagTombstone
			}
		}
		if flag == flagLive {
			it.add(k, val, ts)
		}
		if len(it.chunk) >= iterChunkSize || examined >= limit {
			break
		}
	}
	it.e.stats.keysRead.Add(uint64(examined))
	if k == nil || !it.inRange(k) {
		it.done = true
		return nil
	}
	it.resume = append(it.resume[:0], last...)
	it.begun = true
	return nil
}

// first positions c where this chunk starts.
func (it *Iterator) first(c *bolt.Cursor) (k, v []byte) {
	if !it.reverse {
		if !it.begun {
			return c.Seek(it.start)
		}
		k, v = c.Seek(it.resume)
		if k != nil && bytes.Equal(k, it.resume) {
			k, v = c.Next()
		}
		return k, v
	}
	bound := it.end
	if it.begun {
		bound = it.resume
	}
	if bound == nil {
		return c.Last()
	}
	// Seek lands on the first key >= bound; the one before it is the first
	// key below bound, or the last key when Seek ran off the end.
	if k, _ = c.Seek(bound); k == nil {
		return c.Last()
	}
	return c.Prev()
}

func (it *Iterator) step(c *bolt.Cursor) (k, v []byte) {
	if it.reverse {
		return c.Prev()
	}
	return c.Next()
}

func (it *Iterator) inRange(k []byte) bool {
	if it.reverse {
		return bytes.Compare(k, it.start) >= 0
	}
	return it.end == nil || bytes.Compare(k, it.end) < 0
}

func (it *Iterator) add(k, val []byte, ts Timestamp) {
	var e iterEntry
	e.key[0] = len(it.buf)
	it.buf = append(it.buf, k...)
	e.key[1] = len(it.buf)
	e.val[0] = len(it.buf)
	it.buf = append(it.buf, val...)
	e.val[1] = len(it.buf)
	e.version = ts
	it.chunk = append(it.chunk, e)
}
