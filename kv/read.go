package kv

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Value is one version read.
type Value struct {
	// Data is a copy of the value, owned by the caller. Nil when !Exists.
	Data []byte
	// Version is the commit timestamp of the version read; 0 when !Exists.
	Version Timestamp
	// Exists is false when no live version is visible: the key was never
	// written, or its visible version is a deletion.
	Exists bool
}

// Get returns the newest version of key with a commit timestamp at or below
// ts. ts = MaxTimestamp reads the newest committed version (a current read).
func (e *Engine) Get(key []byte, ts Timestamp) (Value, error) {
	tx, err := e.db.Begin(false)
	if err != nil {
		return Value{}, boltErr(err)
	}
	defer func() { _ = tx.Rollback() }()
	v, examined, err := getTx(tx, key, ts)
	e.stats.keysRead.Add(examined)
	return v, err
}

// getTx reads key as of ts and reports how many stored entries it examined.
func getTx(tx *bolt.Tx, key []byte, ts Timestamp) (Value, uint64, error) {
	latest := tx.Bucket(bucketLatest)
	if latest == nil {
		return Value{}, 0, fmt.Errorf("%w: bucket %q missing", ErrCorrupt, bucketLatest)
	}
	cur := latest.Get(key)
	if cur == nil {
		// GC drops a tombstone from latest only after the key's history, so
		// a key missing here has no version at all.
		return Value{}, 1, nil
	}
	curTS, flag, val, err := decodeLatest(cur)
	if err != nil {
		return Value{}, 1, fmt.Errorf("key %q: %w", key, err)
	}
	if curTS <= ts {
		return visible(flag, val, curTS), 1, nil
	}
	flag, val, hts, found, err := historyAt(tx.Bucket(bucketHistory), key, ts)
	if err != nil || !found {
		return Value{}, 2, err
	}
	return visible(flag, val, hts), 2, nil
}

func visible(flag byte, val []byte, ts Timestamp) Value {
	if flag != flagLive {
		return Value{}
	}
	return Value{Data: append(make([]byte, 0, len(val)), val...), Version: ts, Exists: true}
}

// historyAt finds key's newest history version at or below ts. val aliases
// bbolt memory.
func historyAt(history *bolt.Bucket, key []byte, ts Timestamp) (flag byte, val []byte, version Timestamp, found bool, err error) {
	if history == nil {
		return 0, nil, 0, false, fmt.Errorf("%w: bucket %q missing", ErrCorrupt, bucketHistory)
	}
	var buf [128]byte
	seek := appendHistoryKey(buf[:0], key, ts)
	k, v := history.Cursor().Seek(seek)
	if k == nil || !sameHistoryKey(k, seek) {
		return 0, nil, 0, false, nil
	}
	flag, val, err = decodeHistory(v)
	if err != nil {
		return 0, nil, 0, false, fmt.Errorf("history of key %q: %w", key, err)
	}
	return flag, val, historyKeyTS(k), true, nil
}
