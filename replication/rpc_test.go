package replication

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/lock"
)

// The errors a caller acts on cross the wire as themselves.
func TestErrorsSurviveTheWire(t *testing.T) {
	for _, sentinel := range []error{
		ErrUnavailable, ErrOutcomeUnknown, ErrRejected, ErrNoSuchMember, errNoMethod,
		lock.ErrTimeout, lock.ErrDeadlock, lock.ErrAborted, kv.ErrInvalidBatch, kv.ErrKeyTooLarge,
	} {
		got := decodeError(encodeError(fmt.Errorf("context: %w", sentinel)))
		require.ErrorIs(t, got, sentinel)
	}
	lost := decodeError(encodeError(fmt.Errorf("%w: %w: at 5", ErrSnapshotLost, ErrUnavailable)))
	require.ErrorIs(t, lost, ErrSnapshotLost)
	require.ErrorIs(t, lost, ErrUnavailable)
	nl := decodeError(encodeError(&NotLeaderError{LeaderAddr: "127.0.0.1:9", LeaderID: "n2"}))
	var target *NotLeaderError
	require.ErrorAs(t, nl, &target)
	require.Equal(t, &NotLeaderError{LeaderAddr: "127.0.0.1:9", LeaderID: "n2"}, target)

	other := decodeError(encodeError(errors.New("disk on fire")))
	var re *RemoteError
	require.ErrorAs(t, other, &re)
	require.Equal(t, "disk on fire", re.Msg)
	require.False(t, isTransportErr(other), "an answer is not a broken exchange")

	require.Error(t, decodeError([]byte{errCodeNotLeader, 5}), "truncated frames are refused")
}

func TestCommitResponseRoundTrip(t *testing.T) {
	b, err := encodeCommitResponse(42, 1, nil)
	require.NoError(t, err)
	idx, wan, reported, err := decodeCommitResponse(b)
	require.NoError(t, err)
	require.Equal(t, uint64(42), idx)
	require.Equal(t, uint64(1), wan)
	require.True(t, reported)

	b, err = encodeCommitResponse(0, 2, &kv.ConflictError{Index: 3, Key: []byte("k")})
	require.NoError(t, err)
	_, wan, _, err = decodeCommitResponse(b)
	var ce *kv.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, &kv.ConflictError{Index: 3, Key: []byte("k")}, ce)
	require.Equal(t, uint64(2), wan, "a conflict's entry went through the log too")

	_, err = encodeCommitResponse(0, 0, ErrOutcomeUnknown)
	require.ErrorIs(t, err, ErrOutcomeUnknown, "only conflicts are answers")

	// An older leader's answer stops before the round trips: read as not
	// reported. (An older caller reads the fields it knows and ignores
	// the rest, as its decoder always did.)
	old := binary.BigEndian.AppendUint64(nil, 42)
	idx, _, reported, err = decodeCommitResponse(append(old, 0))
	require.NoError(t, err)
	require.Equal(t, uint64(42), idx)
	require.False(t, reported)
	conflict := appendBytes(binary.AppendUvarint(append(binary.BigEndian.AppendUint64(nil, 0), 1), 3), []byte("k"))
	_, _, reported, err = decodeCommitResponse(conflict)
	require.ErrorAs(t, err, &ce)
	require.False(t, reported)
	_, _, _, err = decodeCommitResponse(append(append(old, 0), 0x80))
	require.Error(t, err, "a truncated count is refused")

	batch := &kv.Batch{
		Mutations:     []kv.Mutation{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Delete: true}},
		Preconditions: []kv.Precondition{{Key: []byte("a"), Exists: true, Version: 7}},
	}
	got, err := decodeBatch(encodeBatch(batch))
	require.NoError(t, err)
	require.Equal(t, batch, got)
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, writeFrame(&buf, []byte("ab"), []byte("cd")))
	got, err := readFrame(&buf)
	require.NoError(t, err)
	require.Equal(t, []byte("abcd"), got)

	// A length beyond the limit is refused before anything is allocated.
	_, err = readFrame(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}))
	require.Error(t, err)
	// A truncated frame is an error, not a short read.
	_, err = readFrame(bytes.NewReader([]byte{0, 0, 0, 9, 'x'}))
	require.Error(t, err)
}

// A pooled connection whose peer closed it, or that holds bytes nobody
// asked for, is not reused; an idle open one is.
func TestAliveSeesAClosedPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	pair := func() (client, server net.Conn) {
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		client, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { client.Close() })
		server = <-accepted
		t.Cleanup(func() { server.Close() })
		return client, server
	}

	c, s := pair()
	require.True(t, alive(c))
	require.True(t, alive(c), "checking must not consume anything")
	require.NoError(t, s.Close())
	require.Eventually(t, func() bool { return !alive(c) }, waitLimit, time.Millisecond)

	c, s = pair()
	_, err = s.Write([]byte("x"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !alive(c) }, waitLimit, time.Millisecond)
}
