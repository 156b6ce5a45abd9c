package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Identifiers that are not well-formed UTF-8, or hold U+0000, are refused
// as MySQL refuses them; before, the invalid bytes were stored as U+FFFD
// and the object could not be reached again.
func TestInvalidIdentifiers(t *testing.T) {
	srv, db := startWithDB(t, "d", "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	c := soloConn(t, srv, "d")
	for _, tc := range []struct {
		stmt string
		code uint16
		msg  string
	}{
		{"CREATE DATABASE `\xff`", 1102, `Incorrect database name '\xFF'`},
		{"CREATE DATABASE `a\x00b`", 1102, `Incorrect database name 'a\x00b'`},
		{"CREATE TABLE `t\xfe` (id INT PRIMARY KEY)", 1103, `Incorrect table name 't\xFE'`},
		{"CREATE TABLE `t\x00` (id INT PRIMARY KEY)", 1103, `Incorrect table name 't\x00'`},
		{"CREATE TABLE u (`c\xff` INT PRIMARY KEY)", 1166, `Incorrect column name 'c\xFF'`},
		{"ALTER TABLE t ADD COLUMN `\xc3` INT", 1166, `Incorrect column name '\xC3'`},
		{"ALTER TABLE t RENAME COLUMN v TO `v\x00`", 1166, `Incorrect column name 'v\x00'`},
		{"RENAME TABLE t TO `\xff\xff`", 1103, `Incorrect table name '\xFF\xFF'`},
		{"CREATE INDEX `i\xff` ON t (v)", 1280, `Incorrect index name 'i\xFF'`},
	} {
		_, err := c.ExecContext(t.Context(), tc.stmt)
		me := requireMySQLError(t, err, tc.code, "42000", "%q", tc.stmt)
		require.Equal(t, tc.msg, me.Message, "%q", tc.stmt)
	}
	// Nothing was created or changed.
	require.EqualValues(t, 0, queryInt(t, db, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name NOT IN ('d', 'mysql', 'information_schema', 'performance_schema', 'sys')"))
	require.EqualValues(t, 1, queryInt(t, db, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'd'"))
	require.EqualValues(t, 2, queryInt(t, db, "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = 'd' AND table_name = 't'"))
	// Valid non-ASCII names still work.
	mustExec(t, c, "CREATE DATABASE `dé`")
	mustExec(t, c, "USE `dé`")
	mustExec(t, c, "CREATE TABLE `tä` (`cö` INT PRIMARY KEY)")
	mustExec(t, c, "INSERT INTO `tä` VALUES (1)")
	require.EqualValues(t, 1, queryInt(t, c, "SELECT `cö` FROM `dé`.`tä`"))
}
