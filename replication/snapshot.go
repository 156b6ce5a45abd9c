package replication

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/fogdb/fogdb/kv"
)

var _ raft.FSMSnapshot = (*fsmSnapshot)(nil)

// Snapshot stream format, version 2 (DESIGN.md):
//
//	header  "fogdbsnp" u8(2) u64(applied index) u64(read ts)
//	        u64(applied term) uvarint(len) cluster ID
//	entry   u8(1) uvarint(len) key uvarint(len) value u64(version)   ...
//	trailer u8(0) u64(entry count) u32(CRC-32C of every byte before it)
//
// Version 1 is version 2 without the applied term and the cluster ID; it is
// still read.
var snapshotMagic = []byte("fogdbsnp")

const (
	snapshotFormat  = 2
	snapshotEntry   = 1
	snapshotEnd     = 0
	snapshotHdrSize = 8 + 1 + 8 + 8
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Restores apply the snapshot in chunks so one bbolt transaction stays small.
const (
	restoreChunkBytes   = 4 << 20
	restoreChunkBatches = 1024
	sortTxEntries       = 10000
)

type snapshotHeader struct {
	index     uint64
	readTS    kv.Timestamp
	term      uint64 // 0: unknown
	clusterID []byte // nil: none
}

type fsmSnapshot struct {
	engine *kv.Engine
	unpin  func()
	snap   *kv.Snapshot
	pos    kv.LogPosition
}

// Persist streams every live key as of the snapshot's timestamp. The
// iterator reads in short transactions, so nothing pins bbolt pages however
// long the sink takes; the snapshot pins the engine (until Release), so a
// Restore meanwhile does not close it under the iterator.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("replication: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) write(sink io.Writer) error {
	h := crc32.New(crcTable)
	w := bufio.NewWriterSize(io.MultiWriter(sink, h), 64<<10)
	var hdr [snapshotHdrSize]byte
	copy(hdr[:], snapshotMagic)
	hdr[8] = snapshotFormat
	binary.BigEndian.PutUint64(hdr[9:], s.pos.Index)
	binary.BigEndian.PutUint64(hdr[17:], uint64(s.snap.TS()))
	ext := binary.BigEndian.AppendUint64(hdr[:], s.pos.Term)
	ext = appendBytes(ext, s.pos.ClusterID)
	if _, err := w.Write(ext); err != nil {
		return err
	}
	it := s.engine.NewIterator(nil, nil, s.snap.TS(), false)
	defer it.Close()
	var count uint64
	var scratch []byte
	for it.Next() {
		scratch = scratch[:0]
		scratch = append(scratch, snapshotEntry)
		scratch = appendBytes(scratch, it.Key())
		scratch = appendBytes(scratch, it.Value())
		scratch = binary.BigEndian.AppendUint64(scratch, uint64(it.Version()))
		if _, err := w.Write(scratch); err != nil {
			return err
		}
		count++
	}
	if err := it.Err(); err != nil {
		return err
	}
	var end [9]byte
	end[0] = snapshotEnd
	binary.BigEndian.PutUint64(end[1:], count)
	if _, err := w.Write(end[:]); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], h.Sum32())
	_, err := sink.Write(sum[:])
	return err
}

// Release lets GC collect the versions only this snapshot needed.
// The engine is closed here if a Restore replaced it meanwhile.
func (s *fsmSnapshot) Release() {
	s.snap.Release()
	s.unpin()
}

// snapReader reads a snapshot stream and checksums what it consumed.
type snapReader struct {
	r *bufio.Reader
	h hash.Hash32
}

func newSnapReader(r io.Reader) *snapReader {
	return &snapReader{r: bufio.NewReaderSize(r, 64<<10), h: crc32.New(crcTable)}
}

func (s *snapReader) ReadByte() (byte, error) {
	b, err := s.r.ReadByte()
	if err == nil {
		s.h.Write([]byte{b})
	}
	return b, err
}

func (s *snapReader) full(n uint64) ([]byte, error) {
	if n > kv.MaxValueSize {
		return nil, fmt.Errorf("%w: length %d", ErrBadSnapshot, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(s.r, b); err != nil {
		return nil, truncated(err)
	}
	s.h.Write(b)
	return b, nil
}

func (s *snapReader) bytes() ([]byte, error) {
	n, err := binary.ReadUvarint(s)
	if err != nil {
		return nil, truncated(err)
	}
	return s.full(n)
}

func (s *snapReader) u64() (uint64, error) {
	b, err := s.full(8)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated", ErrBadSnapshot)
	}
	if errors.Is(err, ErrBadSnapshot) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrBadSnapshot, err)
}

func readSnapshotHeader(s *snapReader) (snapshotHeader, error) {
	b, err := s.full(snapshotHdrSize)
	if err != nil {
		return snapshotHeader{}, err
	}
	if !bytes.Equal(b[:8], snapshotMagic) {
		return snapshotHeader{}, fmt.Errorf("%w: not a fogdb snapshot", ErrBadSnapshot)
	}
	if b[8] != 1 && b[8] != snapshotFormat {
		return snapshotHeader{}, fmt.Errorf("%w: unknown format %d", ErrBadSnapshot, b[8])
	}
	hdr := snapshotHeader{
		index:  binary.BigEndian.Uint64(b[9:]),
		readTS: kv.Timestamp(binary.BigEndian.Uint64(b[17:])),
	}
	if b[8] == 1 {
		return hdr, nil
	}
	if hdr.term, err = s.u64(); err != nil {
		return snapshotHeader{}, err
	}
	id, err := s.bytes()
	if err != nil {
		return snapshotHeader{}, err
	}
	if len(id) > kv.MaxClusterIDSize {
		return snapshotHeader{}, fmt.Errorf("%w: cluster ID of %d bytes", ErrBadSnapshot, len(id))
	}
	if len(id) > 0 {
		hdr.clusterID = id
	}
	return hdr, nil
}

func restorePath(path string) string { return path + ".restore" }
func sortPath(path string) string    { return path + ".restore-sort" }

// buildFromSnapshot writes the snapshot in r into a new store at
// restorePath(opts.Path), leaving the live file alone. Every key keeps its
// original version, so preconditions decide alike on this replica and the
// others; kv.Apply needs strictly increasing timestamps, so the entries,
// which arrive in key order, are first sorted by version in a scratch bbolt
// file (the store may not fit in memory).
//
// The new store gets the snapshot's applied index and term, and its cluster
// ID, or clusterID when the snapshot names none.
func buildFromSnapshot(r io.Reader, opts kv.Options, clusterID []byte, logger hclog.Logger) (snapshotHeader, error) {
	sr := newSnapReader(r)
	hdr, err := readSnapshotHeader(sr)
	if err != nil {
		return hdr, err
	}
	sp := sortPath(opts.Path)
	_ = os.Remove(sp)
	sortDB, err := bolt.Open(sp, 0o600, &bolt.Options{NoSync: true, NoFreelistSync: true})
	if err != nil {
		return hdr, fmt.Errorf("replication: restore: %w", err)
	}
	defer func() {
		_ = sortDB.Close()
		_ = os.Remove(sp)
	}()
	if err := sortEntries(sr, sortDB, hdr); err != nil {
		return hdr, err
	}
	rp := restorePath(opts.Path)
	_ = os.Remove(rp)
	ropts := opts
	ropts.Path = rp
	ropts.GCInterval = 0
	e, err := kv.Open(ropts)
	if err != nil {
		return hdr, fmt.Errorf("replication: restore: %w", err)
	}
	pos := kv.LogPosition{Index: hdr.index, Term: hdr.term, ClusterID: hdr.clusterID}
	if pos.ClusterID == nil {
		pos.ClusterID = clusterID
	}
	err = applySorted(sortDB, e, hdr, pos)
	if cerr := e.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("replication: restore: %w", cerr)
	}
	if err != nil {
		_ = os.Remove(rp)
		return hdr, err
	}
	logger.Debug("snapshot loaded into a new store", "path", rp)
	return hdr, nil
}

var sortBucket = []byte("v")

// sortEntries reads the snapshot's entries and trailer into db, keyed by
// version then key, and checks the checksum before anything is trusted.
func sortEntries(sr *snapReader, db *bolt.DB, hdr snapshotHeader) error {
	var count uint64
	var prev []byte
	tx, err := db.Begin(true)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	bkt, err := tx.CreateBucketIfNotExists(sortBucket)
	if err != nil {
		return err
	}
	inTx := 0
	for {
		tag, err := sr.ReadByte()
		if err != nil {
			return truncated(err)
		}
		if tag == snapshotEnd {
			break
		}
		if tag != snapshotEntry {
			return fmt.Errorf("%w: entry tag %d", ErrBadSnapshot, tag)
		}
		key, err := sr.bytes()
		if err != nil {
			return err
		}
		val, err := sr.bytes()
		if err != nil {
			return err
		}
		ver, err := sr.u64()
		if err != nil {
			return err
		}
		if len(key) == 0 || len(key) > kv.MaxKeySize || (prev != nil && bytes.Compare(key, prev) <= 0) {
			return fmt.Errorf("%w: entry %d: key out of order or size", ErrBadSnapshot, count)
		}
		if ver == 0 || kv.Timestamp(ver) > hdr.readTS {
			return fmt.Errorf("%w: entry %d: version %d above the snapshot's %d", ErrBadSnapshot, count, ver, hdr.readTS)
		}
		prev = key
		sk := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(key)), ver)
		if err := bkt.Put(append(sk, key...), val); err != nil {
			return err
		}
		count++
		if inTx++; inTx == sortTxEntries {
			if err := tx.Commit(); err != nil {
				return err
			}
			if tx, err = db.Begin(true); err != nil {
				return err
			}
			bkt = tx.Bucket(sortBucket)
			inTx = 0
		}
	}
	n, err := sr.u64()
	if err != nil {
		return err
	}
	want := sr.h.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(sr.r, sum[:]); err != nil {
		return truncated(err)
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return fmt.Errorf("%w: checksum %08x, computed %08x", ErrBadSnapshot, got, want)
	}
	if n != count {
		return fmt.Errorf("%w: trailer counts %d entries, read %d", ErrBadSnapshot, n, count)
	}
	return tx.Commit()
}

// applySorted writes the sorted entries into e, one batch per version (the
// keys of one original batch), and stores the snapshot's applied index and
// last commit timestamp with the final chunk.
func applySorted(db *bolt.DB, e *kv.Engine, hdr snapshotHeader, pos kv.LogPosition) error {
	var (
		batches []*kv.Batch
		ts      []kv.Timestamp
		size    int
	)
	flush := func(pos kv.LogPosition) error {
		errs, err := e.ApplyAt(pos, batches, ts)
		if err != nil {
			return fmt.Errorf("replication: restore: %w", err)
		}
		for _, be := range errs {
			if be != nil {
				return fmt.Errorf("%w: %w", ErrBadSnapshot, be)
			}
		}
		batches, ts, size = nil, nil, 0
		return nil
	}
	err := db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(sortBucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			ver := kv.Timestamp(binary.BigEndian.Uint64(k))
			if n := len(ts); n == 0 || ts[n-1] != ver {
				if len(batches) >= restoreChunkBatches || size >= restoreChunkBytes {
					if err := flush(kv.LogPosition{}); err != nil {
						return err
					}
				}
				batches = append(batches, &kv.Batch{})
				ts = append(ts, ver)
			}
			b := batches[len(batches)-1]
			// bbolt's slices die with the transaction; Apply runs inside it.
			b.Mutations = append(b.Mutations, kv.Mutation{Key: k[8:], Value: v})
			size += len(k) + len(v)
		}
		// last-commit-ts may be above every surviving version (a deletion, a
		// batch whose preconditions failed); an empty batch restores it so
		// this replica refuses the same stale timestamps as the others.
		if n := len(ts); hdr.readTS > 0 && (n == 0 || ts[n-1] < hdr.readTS) {
			batches = append(batches, &kv.Batch{})
			ts = append(ts, hdr.readTS)
		}
		return flush(pos)
	})
	return err
}

// replaceFile renames from over to and makes the rename durable.
func replaceFile(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(to))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// snapshotIndexOf reads the applied index recorded in a snapshot's header.
func snapshotIndexOf(r io.Reader) (uint64, error) {
	hdr, err := readSnapshotHeader(newSnapReader(r))
	return hdr.index, err
}
