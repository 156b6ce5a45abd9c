package sqlfront

import (
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
)

// isolation is a transaction isolation level, as InnoDB implements them on
// top of snapshots and row locks:
//
//   - REPEATABLE READ: plain reads see the snapshot of the transaction's
//     first read; locking reads and writes see the newest commits.
//   - READ COMMITTED: each statement reads from a snapshot of its own,
//     taken after its read barrier. READ UNCOMMITTED runs as READ
//     COMMITTED (it never reads another transaction's uncommitted rows).
//   - SERIALIZABLE: as REPEATABLE READ, but a plain SELECT of a
//     transaction (explicit, or any with autocommit off) reads with shared
//     locks, as LOCK IN SHARE MODE does; an autocommit SELECT stays a
//     consistent read.
type isolation uint8

const (
	isoUnset isolation = iota
	isoReadCommitted
	isoRepeatableRead
	isoSerializable
)

func parseIsolation(v interface{}) isolation {
	s, ok := v.(string)
	if !ok {
		return isoUnset
	}
	switch strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", "-")) {
	case "READ-UNCOMMITTED", "READ-COMMITTED":
		return isoReadCommitted
	case "REPEATABLE-READ":
		return isoRepeatableRead
	case "SERIALIZABLE":
		return isoSerializable
	}
	return isoUnset
}

var errTxCharacteristics = mysql.NewSQLError(1568, "25001",
	"Transaction characteristics can't be changed while a transaction is in progress")

// isolation returns t's isolation level, fixing it the first time t
// touches a table: the level a scope-less SET TRANSACTION chose, once, or
// else the session's transaction_isolation. The engine opens a transaction
// for every statement, including SET TRANSACTION and BEGIN themselves, so
// fixing the level at that point would hand the next transaction's level
// to the wrong one.
func (s *Session) isolation(ctx *sql.Context, t *txn) isolation {
	if t.iso != isoUnset {
		return t.iso
	}
	if s.nextIso != isoUnset {
		t.iso, s.nextIso = s.nextIso, isoUnset
		return t.iso
	}
	t.iso = isoRepeatableRead
	if v, err := s.GetSessionVariable(ctx, "transaction_isolation"); err == nil {
		if iso := parseIsolation(v); iso != isoUnset {
			t.iso = iso
		}
	}
	return t.iso
}

// SetSessionVariable implements sql.Session. transaction_isolation and its
// older name tx_isolation are one setting. SET TRANSACTION ISOLATION LEVEL
// without SESSION or GLOBAL, and SET @@transaction_isolation, which the
// engine hands over as session assignments, set the next transaction's
// level only, and are refused inside a transaction, as in MySQL.
func (s *Session) SetSessionVariable(ctx *sql.Context, name string, value interface{}) error {
	lname := strings.ToLower(name)
	if lname != "transaction_isolation" && lname != "tx_isolation" {
		return s.BaseSession.SetSessionVariable(ctx, name, value)
	}
	if nextTransactionOnly(s.stmtState.query, lname) {
		iso := parseIsolation(value)
		if iso == isoUnset {
			// The engine's own validation gives MySQL's error.
			return s.BaseSession.SetSessionVariable(ctx, name, value)
		}
		if s.inTransaction(ctx) {
			return errTxCharacteristics
		}
		s.nextIso = iso
		return nil
	}
	if err := s.BaseSession.SetSessionVariable(ctx, lname, value); err != nil {
		return err
	}
	v, err := s.BaseSession.GetSessionVariable(ctx, lname)
	if err != nil {
		return err
	}
	other := "tx_isolation"
	if lname == other {
		other = "transaction_isolation"
	}
	return s.BaseSession.SetSessionVariable(ctx, other, v)
}

// nextTransactionOnly reports whether q, which assigns the isolation
// variable name, sets it for the next transaction only: SET TRANSACTION
// without SESSION, GLOBAL or LOCAL, or SET @@name without a scope.
func nextTransactionOnly(q, name string) bool {
	w, next := word(q, skipSpaceAndComments(q, 0))
	if w != "set" {
		return false
	}
	if w, _ = word(q, skipSpaceAndComments(q, next)); w == "transaction" {
		return true
	}
	lq := lowerASCII(q)
	for i := 0; ; {
		j := strings.Index(lq[i:], "@@"+name)
		if j < 0 {
			return false
		}
		end := i + j + 2 + len(name)
		if end == len(lq) || !isWordByte(lq[end]) {
			return true
		}
		i = end
	}
}

// inTransaction reports whether the session is inside a transaction that
// has begun: an explicit one, or an implicit one (autocommit off) that has
// read or written something.
func (s *Session) inTransaction(ctx *sql.Context) bool {
	t := s.txn
	if t == nil {
		return false
	}
	if s.GetIgnoreAutoCommit() {
		return true
	}
	if s.autocommit() {
		return false
	}
	return t.hasSnapshot() || t.buf.Len() > 0 || t.heldBy(s.p) > 0
}
