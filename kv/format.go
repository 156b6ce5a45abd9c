package kv

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The on-disk format; DESIGN.md is its reference and must change with it.

// storageVersion is bumped whenever a change to the format below would make
// an older build misread the file. Open refuses any other value.
const storageVersion uint64 = 1

var (
	bucketMeta    = []byte("meta")
	bucketLatest  = []byte("latest")
	bucketHistory = []byte("history")
	bucketGC      = []byte("gc")
)

var (
	metaStorageVersion = []byte("storage-version")
	metaAppliedIndex   = []byte("applied-index")
	metaAppliedTerm    = []byte("applied-term")
	metaClusterID      = []byte("cluster-id")
	metaLastCommitTS   = []byte("last-commit-ts")
)

// MaxClusterIDSize bounds the cluster ID stored with the applied index.
const MaxClusterIDSize = 64

// Version flags, the first byte of every stored version after its
// timestamp. Zero is left unused so a zeroed page never decodes as data.
const (
	flagLive      byte = 0x01
	flagTombstone byte = 0x02
)

// gc entry kinds, the byte after the superseded-at timestamp. History
// entries sort before tombstones of the same timestamp so that GC removes a
// key's old versions before the tombstone that hides them.
const (
	gcKindHistory   byte = 0x01
	gcKindTombstone byte = 0x02
)

const (
	tsLen           = 8
	latestHeaderLen = tsLen + 1
	// escTerm ends an escaped key: 0x00 0x01 sorts below both an escaped
	// 0x00 byte (0x00 0xFF) and every other byte, so a key's versions all
	// sort before those of any longer key it is a prefix of.
	escTermLen = 2
	// gcKeyOverhead is what a gc entry adds to an escaped user key.
	gcKeyOverhead = tsLen + 1 + escTermLen + tsLen
)

// MaxKeySize is the longest user key: escaping can double a key, and its
// largest derived form (a gc entry) must still fit bbolt's key limit.
const MaxKeySize = (bolt.MaxKeySize - gcKeyOverhead) / 2

// MaxValueSize is the largest user value bbolt can store with the version
// header in front of it.
const MaxValueSize = bolt.MaxValueSize - latestHeaderLen

func putTS(b []byte, ts Timestamp) { binary.BigEndian.PutUint64(b, uint64(ts)) }

func getTS(b []byte) Timestamp { return Timestamp(binary.BigEndian.Uint64(b)) }

// encodeLatest fills dst (latestHeaderLen+len(value) bytes) with a `latest`
// bucket value.
func encodeLatest(dst []byte, ts Timestamp, flag byte, value []byte) {
	putTS(dst, ts)
	dst[tsLen] = flag
	copy(dst[latestHeaderLen:], value)
}

// decodeLatest splits a `latest` value; value aliases v.
func decodeLatest(v []byte) (ts Timestamp, flag byte, value []byte, err error) {
	if len(v) < latestHeaderLen {
		return 0, 0, nil, fmt.Errorf("%w: latest value of %d bytes", ErrCorrupt, len(v))
	}
	flag, value = v[tsLen], v[latestHeaderLen:]
	if err := checkFlag(flag, value); err != nil {
		return 0, 0, nil, err
	}
	return getTS(v), flag, value, nil
}

// decodeHistory splits a `history` value; value aliases v.
func decodeHistory(v []byte) (flag byte, value []byte, err error) {
	if len(v) < 1 {
		return 0, nil, fmt.Errorf("%w: empty history value", ErrCorrupt)
	}
	flag, value = v[0], v[1:]
	if err := checkFlag(flag, value); err != nil {
		return 0, nil, err
	}
	return flag, value, nil
}

func checkFlag(flag byte, value []byte) error {
	switch {
	case flag == flagLive:
		return nil
	case flag == flagTombstone && len(value) == 0:
		return nil
	case flag == flagTombstone:
		return fmt.Errorf("%w: tombstone carrying %d bytes", ErrCorrupt, len(value))
	default:
		return fmt.Errorf("%w: unknown version flag 0x%02x", ErrCorrupt, flag)
	}
}

// appendEscaped appends key with every 0x00 turned into 0x00 0xFF, then the
// 0x00 0x01 terminator. Byte order of the results equals byte order of the
// keys, and no result is a prefix of another.
func appendEscaped(dst, key []byte) []byte {
	for {
		i := bytes.IndexByte(key, 0)
		if i < 0 {
			break
		}
		dst = append(dst, key[:i+1]...)
		dst = append(dst, 0xFF)
		key = key[i+1:]
	}
	dst = append(dst, key...)
	return append(dst, 0x00, 0x01)
}

// appendHistoryKey appends the `history` key of key's version ts. The
// timestamp is inverted so that a key's versions run newest first and a Seek
// to (key, readTS) lands on the newest version at or below readTS.
func appendHistoryKey(dst, key []byte, ts Timestamp) []byte {
	dst = appendEscaped(dst, key)
	return binary.BigEndian.AppendUint64(dst, ^uint64(ts))
}

// historyKeyTS returns the version timestamp of a `history` key.
func historyKeyTS(hk []byte) Timestamp {
	return Timestamp(^binary.BigEndian.Uint64(hk[len(hk)-tsLen:]))
}

// sameHistoryKey reports whether history keys a and b are versions of the
// same user key.
func sameHistoryKey(a, b []byte) bool {
	return len(a) == len(b) && len(a) > tsLen && bytes.Equal(a[:len(a)-tsLen], b[:len(b)-tsLen])
}

// appendGCHistoryKey appends the gc entry for history key hk, superseded by
// the commit at supersededAt.
func appendGCHistoryKey(dst []byte, supersededAt Timestamp, hk []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(supersededAt))
	dst = append(dst, gcKindHistory)
	return append(dst, hk...)
}

// appendGCTombstoneKey appends the gc entry for a tombstone written to
// `latest` by the commit at ts.
func appendGCTombstoneKey(dst []byte, ts Timestamp, key []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = append(dst, gcKindTombstone)
	return append(dst, key...)
}

// decodeGCKey splits a gc entry into its timestamp, kind and target.
func decodeGCKey(k []byte) (ts Timestamp, kind byte, target []byte, err error) {
	if len(k) <= tsLen+1 {
		return 0, 0, nil, fmt.Errorf("%w: gc key of %d bytes", ErrCorrupt, len(k))
	}
	kind = k[tsLen]
	if kind != gcKindHistory && kind != gcKindTombstone {
		return 0, 0, nil, fmt.Errorf("%w: unknown gc entry kind 0x%02x", ErrCorrupt, kind)
	}
	return getTS(k), kind, k[tsLen+1:], nil
}

func encodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeUint64(name, v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: meta %s has %d bytes, want 8", ErrCorrupt, name, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
