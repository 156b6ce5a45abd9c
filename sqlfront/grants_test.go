package sqlfront

import (
	"sort"
	"testing"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/mysql_db"
	"github.com/stretchr/testify/require"
)

func account(name string, privs ...sql.PrivilegeType) *mysql_db.User {
	ps := mysql_db.NewPrivilegeSet()
	ps.AddGlobalStatic(privs...)
	return &mysql_db.User{User: name, Host: "%", PrivilegeSet: ps, Plugin: "mysql_native_password"}
}

// grantsBlob serialises accounts as the engine stores them.
func grantsBlob(t *testing.T, users ...*mysql_db.User) []byte {
	db := mysql_db.CreateEmptyMySQLDb()
	var out blobSink
	db.SetPersister(&out)
	ed := db.Editor()
	defer ed.Close()
	for _, u := range users {
		ed.PutUser(u)
	}
	require.NoError(t, db.Persist(sql.NewEmptyContext(), ed))
	return out.data
}

func accounts(t *testing.T, blob []byte) map[string]int {
	img, err := parseGrants(blob)
	require.NoError(t, err)
	got := map[string]int{}
	for k, u := range img.users {
		got[k.User] = u.PrivilegeSet.GlobalCount()
	}
	return got
}

// A change is applied to the stored users and grants as what it changed,
// not as the whole copy it was made on: accounts another node created,
// dropped or changed meanwhile stay as that node left them.
func TestMergeGrantsKeepsOtherChanges(t *testing.T) {
	base := grantsBlob(t, account("a", sql.PrivilegeType_Select), account("b"), account("gone"))
	// This node revoked a's SELECT and created c.
	mine := grantsBlob(t, account("a"), account("b"), account("gone"), account("c"))
	// Meanwhile another node granted b INSERT, dropped "gone", created d.
	cur := grantsBlob(t, account("a", sql.PrivilegeType_Select), account("b", sql.PrivilegeType_Insert), account("d"))
	out, err := mergeGrants(sql.NewEmptyContext(), base, mine, cur)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"a": 0, "b": 1, "c": 0, "d": 0}, accounts(t, out))

	// The same change made on both sides is no conflict.
	out, err = mergeGrants(sql.NewEmptyContext(), base, mine, mine)
	require.NoError(t, err)
	names := make([]string, 0, 4)
	for n := range accounts(t, out) {
		names = append(names, n)
	}
	sort.Strings(names)
	require.Equal(t, []string{"a", "b", "c", "gone"}, names)
}

// Two nodes changing the same account to different things: the later
// change is refused (1213) rather than silently replacing the other.
func TestMergeGrantsConflictOnOneAccount(t *testing.T) {
	base := grantsBlob(t, account("a"))
	mine := grantsBlob(t, account("a", sql.PrivilegeType_Select))
	cur := grantsBlob(t, account("a", sql.PrivilegeType_Insert))
	_, err := mergeGrants(sql.NewEmptyContext(), base, mine, cur)
	require.ErrorIs(t, err, errGrantsConflict)

	// Both created the same account.
	_, err = mergeGrants(sql.NewEmptyContext(), grantsBlob(t), grantsBlob(t, account("x", sql.PrivilegeType_Select)), grantsBlob(t, account("x")))
	require.ErrorIs(t, err, errGrantsConflict)
}
