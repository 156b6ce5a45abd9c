package sqlfront

import (
	"errors"
	"fmt"

	"github.com/dolthub/vitess/go/mysql"
)

// Errors a client can meet, as MySQL errors with MySQL's codes and SQLSTATEs
// where MySQL has an equivalent. Internal errors keep their Go form until
// here: this file is the edge.
var (
	errDeadlock = mysql.NewSQLError(mysql.ERLockDeadlock, mysql.SSLockDeadlock,
		"Deadlock found when trying to get lock; try restarting transaction")
	errLockWaitTimeout = mysql.NewSQLError(mysql.ERLockWaitTimeout, mysql.SSUnknownSQLState,
		"Lock wait timeout exceeded; try restarting transaction")
	// errLockLost: a commit's preconditions failed, so a lock it relied on
	// was lost (a leader change). Nothing was written; retrying is safe.
	errLockLost = mysql.NewSQLError(mysql.ERLockDeadlock, mysql.SSLockDeadlock,
		"Deadlock found when trying to get lock; try restarting transaction (a row changed under a lost lock)")
	errTableDefChanged = mysql.NewSQLError(1412, mysql.SSUnknownSQLState,
		"Table definition has changed, please retry transaction")
	errIdleAborted = mysql.NewSQLError(mysql.ERLockDeadlock, mysql.SSLockDeadlock,
		"Transaction was rolled back after being idle too long (fogdb idle transaction timeout); try restarting transaction")
	errDDLConflict = mysql.NewSQLError(mysql.ERLockDeadlock, mysql.SSLockDeadlock,
		"Deadlock found when trying to get lock; try restarting transaction (concurrent schema change)")
	errReadOnlyTxn = mysql.NewSQLError(1792, "25006", "Cannot execute statement in a READ ONLY transaction.")
	// errDropAllColumns: a table keeps at least one column.
	errDropAllColumns = mysql.NewSQLError(mysql.ERCantRemoveAllFields, "42000",
		"You can't delete all columns with ALTER TABLE; use DROP TABLE instead")
	errCorruptRow = errors.New("sqlfront: corrupt stored row")
)

func errTxnTooLarge(limit int64) error {
	return mysql.NewSQLError(1197, mysql.SSUnknownSQLState, "%s",
		fmt.Sprintf("Multi-statement transaction required more than %d bytes of storage (fogdb max transaction size); split the transaction", limit))
}

var errInterrupted = mysql.NewSQLError(1317, "70100", "Query execution was interrupted")

func errDupCheck(name string) error {
	return mysql.NewSQLError(3822, mysql.SSUnknownSQLState, "%s", fmt.Sprintf("Duplicate check constraint name '%s'.", name))
}
