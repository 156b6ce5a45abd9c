package sqlfront

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/kv/lock"
)

// A key deferred twice is one lock, the stronger mode, at its first place;
// the lookup is by key, not a scan of the pending locks (a plain INSERT of
// many rows defers two keys a row).
func TestDeferLock(t *testing.T) {
	tp := &txnPart{}
	tp.deferLock([]byte("meta"), lock.Shared)
	tp.deferLock([]byte("a"), lock.Shared)
	tp.deferLock([]byte("b"), lock.Exclusive)
	tp.deferLock([]byte("a"), lock.Exclusive)
	tp.deferLock([]byte("meta"), lock.Shared)
	require.Len(t, tp.pending, 3)
	require.Equal(t, "meta", string(tp.pending[0].Key))
	require.Equal(t, lock.Shared, tp.pending[0].Mode)
	require.Equal(t, "a", string(tp.pending[1].Key))
	require.Equal(t, lock.Exclusive, tp.pending[1].Mode, "a shared lock deferred and then an exclusive one is exclusive")
	require.Equal(t, "b", string(tp.pending[2].Key))
	tp.clearPending()
	require.Empty(t, tp.pending)
	tp.deferLock([]byte("a"), lock.Shared)
	require.Len(t, tp.pending, 1)
}

// Only the client's own plain INSERT into the table it names defers its
// claims: not INSERT IGNORE, not ON DUPLICATE KEY UPDATE, not a trigger's
// insert into another table.
func TestPlainInsert(t *testing.T) {
	m := &tableMeta{db: "nova", def: tableDef{Name: "instances"}}
	for q, want := range map[string]bool{
		"INSERT INTO instances VALUES (1)":                                true,
		"insert into `nova`.`Instances` (id) values (1)":                  true,
		"/* c */ INSERT LOW_PRIORITY INTO nova.instances VALUES (1)":      true,
		"INSERT instances VALUES (1)":                                     true,
		"INSERT IGNORE INTO instances VALUES (1)":                         false,
		"INSERT INTO instances VALUES (1) ON DUPLICATE KEY UPDATE id = 2": false,
		"INSERT INTO other VALUES (1)":                                    false,
		"INSERT INTO cell.instances VALUES (1)":                           false,
		"REPLACE INTO instances VALUES (1)":                               false,
		"UPDATE instances SET id = 1":                                     false,
		"INSERT INTO instances SELECT * FROM x WHERE note = 'ignore me'":  false,
	} {
		require.Equal(t, want, plainInsert(q, m), q)
	}
}
