package sqlfront

import (
	"math"
	"sync"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/types"
)

var sysvarsOnce sync.Once

// DefaultMaxAllowedPacket is MySQL 8's max_allowed_packet: the largest
// packet a client may send and the longest string a function may build.
const DefaultMaxAllowedPacket = 64 << 20

// registerSystemVariables replaces the engine's placeholders for the
// variables whose behaviour fogdb implements: innodb_lock_wait_timeout is a
// real session variable here (1 to 1073741824 seconds, MySQL's range), and
// the server reports itself as fogdb, and sql_mode defaults to MySQL 8.0's
// (the engine's lacks NO_ZERO_IN_DATE, NO_ZERO_DATE and
// ERROR_FOR_DIVISION_BY_ZERO).
func registerSystemVariables(cfg Config) {
	sysvarsOnce.Do(func() {
		mode := cfg.SQLMode
		if mode == "" {
			mode = MySQL80SQLMode
		}
		if sv, _, ok := sql.SystemVariables.GetGlobal("sql_mode"); ok && mode != sql.DefaultSqlMode {
			if msv, ok := sv.(*sql.MysqlSystemVariable); ok {
				def := *msv
				def.Default = mode
				sql.SystemVariables.AddSystemVariables([]sql.SystemVariable{&def})
			}
		}
		wait := int64(cfg.DefaultLockWaitTimeout.Seconds())
		if wait < 1 {
			wait = 1
		}
		sql.SystemVariables.AddSystemVariables([]sql.SystemVariable{
			&sql.MysqlSystemVariable{
				Name:    "innodb_lock_wait_timeout",
				Scope:   sql.GetMysqlScope(sql.SystemVariableScope_Both),
				Dynamic: true,
				Type:    types.NewSystemIntType("innodb_lock_wait_timeout", 1, 1073741824, false),
				Default: wait,
			},
			&sql.MysqlSystemVariable{
				Name:    "max_allowed_packet",
				Scope:   sql.GetMysqlScope(sql.SystemVariableScope_Both),
				Dynamic: true,
				Type:    types.NewSystemUintType("max_allowed_packet", 1024, 1073741824),
				Default: int64(DefaultMaxAllowedPacket),
			},
			&sql.MysqlSystemVariable{
				Name:    MaxStatementMemoryVar,
				Scope:   sql.GetMysqlScope(sql.SystemVariableScope_Both),
				Dynamic: true,
				Type:    types.NewSystemIntType(MaxStatementMemoryVar, 0, math.MaxInt64, false),
				Default: cfg.MaxStatementMemory,
			},
			secureFilePrivVariable(),
			&sql.MysqlSystemVariable{
				Name:    "version_comment",
				Scope:   sql.GetMysqlScope(sql.SystemVariableScope_Global),
				Type:    types.NewSystemStringType("version_comment"),
				Default: "fogdb",
			},
		})
	})
}
