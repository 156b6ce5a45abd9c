package sqlfront

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
)

// MySQL refuses identifiers that are not well-formed in its system
// character set (UTF-8) and identifiers with U+0000. fogdb stores names as
// JSON, which would turn each invalid byte into U+FFFD: the object would be
// created under a name no statement can reach again.

// badName reports whether name cannot be a MySQL identifier.
func badName(name string) bool {
	return !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0
}

// printableName shows name as MySQL's error messages do: bytes that are
// not characters as \xNN, and at most 100 characters.
func printableName(name string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(name) && n < 100; n++ {
		r, size := utf8.DecodeRuneInString(name[i:])
		if (r == utf8.RuneError && size == 1) || r == 0 {
			fmt.Fprintf(&b, `\x%02X`, name[i])
		} else {
			b.WriteString(name[i : i+size])
		}
		i += size
	}
	return b.String()
}

func checkDBName(name string) error {
	if badName(name) {
		return mysql.NewSQLError(1102, "42000", "Incorrect database name '%s'", printableName(name)) // ER_WRONG_DB_NAME
	}
	return nil
}

func checkTableName(name string) error {
	if badName(name) {
		return mysql.NewSQLError(1103, "42000", "Incorrect table name '%s'", printableName(name)) // ER_WRONG_TABLE_NAME
	}
	return nil
}

func checkColumnName(name string) error {
	if badName(name) {
		return mysql.NewSQLError(1166, "42000", "Incorrect column name '%s'", printableName(name)) // ER_WRONG_COLUMN_NAME
	}
	return nil
}

func checkColumnNames(sch sql.Schema) error {
	for _, c := range sch {
		if err := checkColumnName(c.Name); err != nil {
			return err
		}
	}
	return nil
}

func checkIndexName(name string) error {
	if badName(name) {
		return mysql.NewSQLError(1280, "42000", "Incorrect index name '%s'", printableName(name)) // ER_WRONG_NAME_FOR_INDEX
	}
	return nil
}
