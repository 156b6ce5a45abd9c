package server

import (
	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
)

// processList is the engine's process list as SHOW PROCESSLIST and
// information_schema.processlist read it, without the engine's per-table
// progress: its partition names are fogdb's binary key ranges, which MySQL
// clients would get as the State column. A running statement's State is
// the engine's plain "running".
type processList struct {
	sql.ProcessList
}

func (p processList) Processes() []sql.Process {
	procs := p.ProcessList.Processes()
	for i := range procs {
		procs[i].Progress = nil
	}
	return procs
}

// loggedIn records the user of a connection that just authenticated. The
// engine does so only when the client names a database (or USEs one), so
// every other connection was listed as "unauthenticated user" for its whole
// life.
func (s *Server) loggedIn(c *mysql.Conn, who sql.MysqlConnectionUser) {
	client := sql.Client{Address: who.Host, User: who.User, Capabilities: c.Capabilities}
	s.engine.ProcessList.ConnectionReady(sql.NewBaseSessionWithClientServer(s.MySQLAddr(), client, c.ConnectionID))
}
