package replication

import (
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestVersionEncoding(t *testing.T) {
	b := encodeVersion(BuildVersion, "v1.2.3")
	v, build, err := decodeVersion(b)
	require.NoError(t, err)
	require.Equal(t, BuildVersion, v)
	require.Equal(t, "v1.2.3", build)

	// A later build may append fields; this one reads what it knows.
	v, build, err = decodeVersion(append(b, 9, 9, 9))
	require.NoError(t, err)
	require.Equal(t, BuildVersion, v)
	require.Equal(t, "v1.2.3", build)

	for _, bad := range [][]byte{nil, {2}, {2, 2}, {0, 2, 0}, {2, 0, 0}, {2, 2, 5, 'a'}} {
		_, _, err := decodeVersion(bad)
		require.ErrorIs(t, err, ErrBadCommand, "%v", bad)
	}
	require.Equal(t, Version{Commands: CommandCommit, Snapshot: 1}, BuildVersion.min(legacyVersion))
}

// A node advertising an older version applies as that build would: an
// entry type above it is refused like an unknown one.
func TestAdvertisedVersionLimitsApply(t *testing.T) {
	f := &FSM{maxCommand: CommandCommit}
	data, err := EncodeClusterID([]byte("0123456789abcdef"))
	require.NoError(t, err)
	require.PanicsWithValue(t, "replication: entry 7: replication: undecodable command: unknown command type 2", func() {
		f.Apply(&raft.Log{Index: 7, Data: data})
	})
}
