package wire

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A value at or beyond its column type's bounds, and what MySQL 8 does
// with it in a strict mode (the default) and in a non-strict one.
type bound struct {
	typ  string // the column's type
	text string // the value as an SQL literal (text protocol)
	arg  any    // the value as a statement parameter (binary protocol); nil: none
	// strict: 0 stores the value (holds must then hold, with warns);
	// otherwise MySQL's error, whose message names column c, row 1.
	num   uint16
	state string
	msg   string
	// stored: an SQL predicate on column c that holds once the value is
	// stored (non-strict, or strict when num is 0); "" leaves the
	// non-strict outcome unchecked.
	holds string
	warns []warning // non-strict (and strict when num is 0)
}

const rowSuffix = " for column 'c' at row 1"

func outOfRange(typ, text string, arg any, holds string) bound {
	return bound{typ: typ, text: text, arg: arg, num: 1264, state: "22003", msg: "Out of range value" + rowSuffix,
		holds: holds, warns: []warning{{"Warning", 1264, "Out of range value" + rowSuffix}}}
}

func fits(typ, text string, arg any, holds string, warns ...warning) bound {
	return bound{typ: typ, text: text, arg: arg, holds: holds, warns: warns}
}

func badValue(typ, text string, arg any, num uint16, state, msg, holds string, warns ...warning) bound {
	return bound{typ: typ, text: text, arg: arg, num: num, state: state, msg: msg, holds: holds, warns: warns}
}

var (
	truncated   = warning{"Warning", 1265, "Data truncated" + rowSuffix}
	truncNote   = warning{"Note", 1265, "Data truncated" + rowSuffix}
	rangeWarn   = warning{"Warning", 1264, "Out of range value" + rowSuffix}
	tooLongWarn = warning{"Warning", 1406, "Data too long" + rowSuffix}
)

func dataTooLong(typ, text string, arg any, holds string, w warning) bound {
	return badValue(typ, text, arg, 1406, "22001", "Data too long"+rowSuffix, holds, w)
}

func incorrect(typ, kind, text, shown string, arg any, holds string, warn bool) bound {
	msg := fmt.Sprintf("Incorrect %s value: '%s'", kind, shown) + rowSuffix
	b := badValue(typ, text, arg, 1366, "HY000", msg, holds)
	if warn {
		b.warns = []warning{{"Warning", 1366, msg}}
	}
	return b
}

func wrongTemporal(typ, kind, text string, arg any, holds string, w warning) bound {
	shown := strings.Trim(text, "'")
	return badValue(typ, text, arg, 1292, "22007", fmt.Sprintf("Incorrect %s value: '%s'", kind, shown)+rowSuffix, holds, w)
}

const digits41 = "12345678901234567890123456789012345678901"

// bounds goes through every numeric, temporal and string type at and
// beyond its bounds (MySQL 8.0 reference manual, "Data Types", and
// "Out-of-Range and Overflow Handling").
var bounds = []bound{
	// Integers: the bounds store; one beyond is 1264, clipped otherwise.
	fits("TINYINT", "127", int64(127), "c = 127"),
	fits("TINYINT", "-128", int64(-128), "c = -128"),
	outOfRange("TINYINT", "128", int64(128), "c = 127"),
	outOfRange("TINYINT", "-129", int64(-129), "c = -128"),
	fits("TINYINT UNSIGNED", "255", int64(255), "c = 255"),
	outOfRange("TINYINT UNSIGNED", "256", int64(256), "c = 255"),
	outOfRange("TINYINT UNSIGNED", "-1", int64(-1), "c = 0"),
	outOfRange("SMALLINT", "32768", int64(32768), "c = 32767"),
	outOfRange("SMALLINT", "-32769", int64(-32769), "c = -32768"),
	outOfRange("SMALLINT UNSIGNED", "65536", int64(65536), "c = 65535"),
	outOfRange("MEDIUMINT", "8388608", int64(8388608), "c = 8388607"),
	outOfRange("MEDIUMINT", "-8388609", int64(-8388609), "c = -8388608"),
	outOfRange("MEDIUMINT UNSIGNED", "16777216", int64(16777216), "c = 16777215"),
	outOfRange("INT", "2147483648", int64(2147483648), "c = 2147483647"),
	outOfRange("INT", "-2147483649", int64(-2147483649), "c = -2147483648"),
	outOfRange("INT UNSIGNED", "4294967296", int64(4294967296), "c = 4294967295"),
	outOfRange("INT UNSIGNED", "-1", int64(-1), "c = 0"),
	fits("BIGINT", "9223372036854775807", int64(9223372036854775807), "c = 9223372036854775807"),
	fits("BIGINT", "-9223372036854775808", int64(-9223372036854775808), "c = -9223372036854775808"),
	outOfRange("BIGINT", "9223372036854775808", uint64(9223372036854775808), "c = 9223372036854775807"),
	outOfRange("BIGINT", "-9223372036854775809", "-9223372036854775809", "c = -9223372036854775808"),
	fits("BIGINT UNSIGNED", "18446744073709551615", uint64(18446744073709551615), "c = 18446744073709551615"),
	outOfRange("BIGINT UNSIGNED", "18446744073709551616", "18446744073709551616", "c = 18446744073709551615"),
	outOfRange("BIGINT UNSIGNED", "-1", int64(-1), "c = 0"),
	outOfRange("BIGINT UNSIGNED", digits41, digits41, "c = 18446744073709551615"),
	outOfRange("BIGINT", digits41, digits41, "c = 9223372036854775807"),
	outOfRange("BIGINT", "-"+digits41, "-"+digits41, "c = -9223372036854775808"),
	outOfRange("INT", "'1e400'", "1e400", "c = 2147483647"),
	outOfRange("INT", "3e9", 3e9, "c = 2147483647"),
	fits("SMALLINT", "'1e3'", "1e3", "c = 1000"),
	incorrect("INT", "integer", "'abc'", "abc", "abc", "c = 0", true),
	incorrect("INT", "integer", "''", "", "", "c = 0", true),
	badValue("INT", "'12abc'", "12abc", 1265, "01000", "Data truncated"+rowSuffix, "c = 12", truncated),

	// Fixed point.
	fits("DECIMAL(5,2)", "999.99", "999.99", "c = 999.99"),
	fits("DECIMAL(5,2)", "-999.99", "-999.99", "c = -999.99"),
	fits("DECIMAL(5,2)", "1.234", "1.234", "c = 1.23", truncNote),
	outOfRange("DECIMAL(5,2)", "999.995", "999.995", "c = 999.99"),
	outOfRange("DECIMAL(5,2)", "1000", int64(1000), "c = 999.99"),
	outOfRange("DECIMAL(5,2)", "-1000", int64(-1000), "c = -999.99"),
	outOfRange("DECIMAL(30,0)", "1"+strings.Repeat("0", 30), "1"+strings.Repeat("0", 30), "c = "+strings.Repeat("9", 30)),
	outOfRange("DECIMAL(5,2)", "1e10", 1e10, "c = 999.99"),
	badValue("DECIMAL(5,2)", "'1e400'", "1e400", 1366, "HY000", "Incorrect decimal value: '1e400'"+rowSuffix, "c = 999.99", rangeWarn),
	incorrect("DECIMAL(5,2)", "decimal", "'abc'", "abc", "abc", "c = 0", true),
	badValue("DECIMAL(5,2)", "'12abc'", "12abc", 1366, "HY000", "Incorrect decimal value: '12abc'"+rowSuffix, "c = 12", truncNote),
	badValue("DECIMAL(5,2)", "'1e'", "1e", 1366, "HY000", "Incorrect decimal value: '1e'"+rowSuffix, "c = 1", truncNote),

	// Floating point.
	fits("FLOAT", "3.4028234e38", float64(3.4028234e38), "c > 3.4e38"),
	outOfRange("FLOAT", "3.5e38", 3.5e38, "c = 3.4028234663852886e38"),
	outOfRange("FLOAT", "-3.5e38", -3.5e38, "c = -3.4028234663852886e38"),
	fits("FLOAT", "1e-46", 1e-46, "c = 0"),
	outOfRange("FLOAT", "'1e39'", "1e39", "c = 3.4028234663852886e38"),
	fits("DOUBLE", "1.7976931348623157e308", 1.7976931348623157e308, "c = 1.7976931348623157e308"),
	outOfRange("DOUBLE", "'1e400'", "1e400", "c = 1.7976931348623157e308"),
	outOfRange("DOUBLE", "'1e309'", "1e309", "c = 1.7976931348623157e308"),
	// Text that is no number is a truncation for the approximate types
	// (MySQL 8's strict mode answers 1265, not 1366, here).
	badValue("FLOAT", "'nan'", "nan", 1265, "01000", "Data truncated"+rowSuffix, "c = 0", truncated),
	badValue("FLOAT", "'inf'", "inf", 1265, "01000", "Data truncated"+rowSuffix, "c = 0", truncated),
	badValue("DOUBLE", "'abc'", "abc", 1265, "01000", "Data truncated"+rowSuffix, "c = 0", truncated),
	badValue("DOUBLE", "''", "", 1265, "01000", "Data truncated"+rowSuffix, "c = 0", truncated),
	badValue("DOUBLE", "'1.5abc'", "1.5abc", 1265, "01000", "Data truncated"+rowSuffix, "c = 1.5", truncated),
	badValue("DOUBLE", "1e400", nil, 1367, "22007", "Illegal double '1e400' value found during parsing", ""),

	// BIT: too many bits is 1406, clipped to all ones otherwise.
	fits("BIT(4)", "15", int64(15), "c = 15"),
	dataTooLong("BIT(4)", "16", int64(16), "c = 15", tooLongWarn),
	dataTooLong("BIT(4)", "b'11111'", nil, "c = 15", tooLongWarn),
	dataTooLong("BIT(4)", "-1", int64(-1), "c = 15", tooLongWarn),
	outOfRange("BIT(8)", "18446744073709551616", nil, ""),

	// Temporal types.
	fits("YEAR", "2155", int64(2155), "c = 2155"),
	fits("YEAR", "1901", int64(1901), "c = 1901"),
	outOfRange("YEAR", "2156", int64(2156), "c = 0"),
	outOfRange("YEAR", "1900", int64(1900), "c = 0"),
	outOfRange("YEAR", "-1", int64(-1), "c = 0"),
	incorrect("YEAR", "integer", "'abc'", "abc", "abc", "c = 0", true),
	fits("DATE", "'9999-12-31'", "9999-12-31", "c = '9999-12-31'"),
	fits("DATE", "'1000-01-01'", "1000-01-01", "c = '1000-01-01'"),
	wrongTemporal("DATE", "date", "'2023-02-29'", "2023-02-29", "c = '0000-00-00'", rangeWarn),
	wrongTemporal("DATE", "date", "'2024-13-01'", "2024-13-01", "", truncated),
	wrongTemporal("DATE", "date", "'abc'", "abc", "c = '0000-00-00'", truncated),
	fits("DATETIME", "'9999-12-31 23:59:59'", "9999-12-31 23:59:59", "c = '9999-12-31 23:59:59'"),
	wrongTemporal("DATETIME", "datetime", "'2024-02-30 00:00:00'", "2024-02-30 00:00:00", "c = '0000-00-00 00:00:00'", rangeWarn),
	wrongTemporal("DATETIME", "datetime", "'2024-01-01 24:00:00'", "2024-01-01 24:00:00", "", truncated),
	fits("TIMESTAMP", "'2038-01-19 03:14:07'", "2038-01-19 03:14:07", "c = '2038-01-19 03:14:07'"),
	fits("TIMESTAMP", "'1970-01-01 00:00:01'", "1970-01-01 00:00:01", "c = '1970-01-01 00:00:01'"),
	wrongTemporal("TIMESTAMP", "datetime", "'2038-01-19 03:14:08'", "2038-01-19 03:14:08", "c = '0000-00-00 00:00:00'", rangeWarn),
	wrongTemporal("TIMESTAMP", "datetime", "'1970-01-01 00:00:00'", "1970-01-01 00:00:00", "c = '0000-00-00 00:00:00'", rangeWarn),
	wrongTemporal("TIMESTAMP", "datetime", "'2024-02-30 00:00:00'", "2024-02-30 00:00:00", "c = '0000-00-00 00:00:00'", rangeWarn),
	fits("TIME", "'838:59:59'", "838:59:59", "c = '838:59:59'"),
	fits("TIME", "'-838:59:59'", "-838:59:59", "c = '-838:59:59'"),
	wrongTemporal("TIME", "time", "'839:00:00'", "839:00:00", "c = '838:59:59'", rangeWarn),
	wrongTemporal("TIME", "time", "'-839:00:00'", "-839:00:00", "c = '-838:59:59'", rangeWarn),
	wrongTemporal("TIME", "time", "'12:60:00'", "12:60:00", "c = '00:00:00'", rangeWarn),

	// Strings: what does not fit is 1406, cut otherwise; trailing spaces
	// of a non-binary string are a note.
	fits("VARCHAR(3)", "'abc'", "abc", "c = 'abc'"),
	dataTooLong("VARCHAR(3)", "'abcd'", "abcd", "c = 'abc'", truncated),
	fits("VARCHAR(3)", "'ab    '", "ab    ", "c = 'ab '", truncNote),
	dataTooLong("VARCHAR(3)", "'äöüß'", "äöüß", "c = 'äöü'", truncated),
	dataTooLong("CHAR(3)", "'abcd'", "abcd", "c = 'abc'", truncated),
	dataTooLong("VARBINARY(3)", "'ab  '", "ab  ", "c = 'ab '", truncated),
	dataTooLong("BINARY(3)", "'abcd'", "abcd", "c = 'abc'", truncated),
	dataTooLong("TINYTEXT", "REPEAT('x', 256)", strings.Repeat("x", 256), "LENGTH(c) = 255", truncated),
	dataTooLong("TINYBLOB", "REPEAT('x', 256)", strings.Repeat("x", 256), "LENGTH(c) = 255", truncated),
	dataTooLong("TEXT", "REPEAT('x', 65536)", strings.Repeat("x", 65536), "LENGTH(c) = 65535", truncated),
	fits("ENUM('a','b')", "'b'", "b", "c = 'b'"),
	fits("ENUM('a','b')", "'b '", "b ", "c = 'b'"),
	fits("ENUM('a','b')", "2", int64(2), "c = 'b'"),
	badValue("ENUM('a','b')", "'c'", "c", 1265, "01000", "Data truncated"+rowSuffix, "c + 0 = 0", truncated),
	badValue("ENUM('a','b')", "3", int64(3), 1265, "01000", "Data truncated"+rowSuffix, "c + 0 = 0", truncated),
	badValue("ENUM('a','b')", "0", int64(0), 1265, "01000", "Data truncated"+rowSuffix, "c + 0 = 0", truncated),
	fits("SET('a','b')", "'b,a'", "b,a", "c = 'a,b'"),
	badValue("SET('a','b')", "'a,c'", "a,c", 1265, "01000", "Data truncated"+rowSuffix, "c = 'a'", truncated),
	badValue("SET('a','b')", "5", int64(5), 1265, "01000", "Data truncated"+rowSuffix, "c = 'a'", truncated),
}

// TestValueBounds stores each value of bounds in the text protocol and as a
// prepared statement's parameter, in a strict and a non-strict mode.
func TestValueBounds(t *testing.T) {
	srv, root := startWithDB(t, "d")
	tables := map[string]string{}
	for _, b := range bounds {
		if _, ok := tables[b.typ]; !ok {
			name := fmt.Sprintf("t%d", len(tables))
			tables[b.typ] = name
			mustExec(t, root, fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, c %s)", name, b.typ))
		}
	}
	c := soloConn(t, srv, "d")
	mustExec(t, c, "SET time_zone = '+00:00'")
	ctx := context.Background()
	for _, b := range bounds {
		table := tables[b.typ]
		for _, strict := range []bool{true, false} {
			mode := "DEFAULT"
			if !strict {
				mode = "''"
			}
			for _, binary := range []bool{false, true} {
				if binary && b.arg == nil {
					continue
				}
				name := fmt.Sprintf("%s %s strict=%v binary=%v", b.typ, b.text, strict, binary)
				if len(name) > 120 {
					name = name[:120]
				}
				t.Run(name, func(t *testing.T) {
					mustExec(t, c, "SET SESSION sql_mode = "+mode)
					mustExec(t, c, "DELETE FROM "+table)
					var err error
					if binary {
						_, err = c.ExecContext(ctx, "INSERT INTO "+table+" (id, c) VALUES (1, ?)", b.arg)
					} else {
						_, err = c.ExecContext(ctx, "INSERT INTO "+table+" (id, c) VALUES (1, "+b.text+")")
					}
					if b.num == 1367 {
						// A literal MySQL cannot even parse, whatever the mode.
						me := requireMySQLError(t, err, b.num, b.state)
						require.Equal(t, b.msg, me.Message)
						return
					}
					if strict && b.num != 0 {
						me := requireMySQLError(t, err, b.num, b.state)
						require.Equal(t, b.msg, me.Message)
						require.EqualValues(t, 0, queryInt(t, c, "SELECT COUNT(*) FROM "+table))
						return
					}
					require.NoError(t, err)
					if b.holds == "" {
						return
					}
					warns := showWarnings(t, c)
					if b.warns == nil {
						require.Empty(t, warns)
					} else {
						require.Equal(t, b.warns, warns)
					}
					require.EqualValues(t, 1, queryInt(t, c, "SELECT COUNT(*) FROM "+table+" WHERE id = 1 AND "+b.holds),
						"stored: %s", storedText(t, c, table))
				})
			}
		}
	}
}

func storedText(t *testing.T, c querier, table string) string {
	t.Helper()
	var s sql.NullString
	_ = c.QueryRowContext(context.Background(), "SELECT CAST(c AS CHAR) FROM "+table+" WHERE id = 1").Scan(&s)
	if !s.Valid {
		return "NULL"
	}
	return s.String
}
