package sqlfront

import (
	"context"
	"fmt"
	"strings"
	"testing"

	sqle "github.com/dolthub/go-mysql-server"
	"github.com/dolthub/go-mysql-server/memory"
	"github.com/dolthub/go-mysql-server/sql"
	"github.com/stretchr/testify/require"
)

// The engine-level benchmarks run the same statements through
// go-mysql-server over fogdb and over the engine's memory backend (the
// baseline: no storage, no transactions), so the cost fogdb adds shows
// side by side:
//
//	go test ./sqlfront -run '^$' -bench 'PointSelect|UpdateByPK' -benchtime 3s

type benchTarget struct {
	name   string
	e      *sqle.Engine
	newCtx func(q string) *sql.Context
}

func benchTargets(b *testing.B) []benchTarget {
	db := newTestDB(b)
	fog := benchTarget{name: "fogdb", e: db.e, newCtx: func(q string) *sql.Context {
		return sql.NewContext(context.Background(), sql.WithSession(db.sess)).WithQuery(q)
	}}
	pro := memory.NewDBProviderWithOpts(memory.NativeIndexProvider(true)).(*memory.DbProvider)
	msess := memory.NewSession(sql.NewBaseSession(), pro)
	mem := benchTarget{name: "memory", e: sqle.NewDefault(pro), newCtx: func(q string) *sql.Context {
		return sql.NewContext(context.Background(), sql.WithSession(msess)).WithQuery(q)
	}}
	for _, tg := range []benchTarget{fog, mem} {
		run(b, tg, "CREATE DATABASE sb")
		run(b, tg, "USE sb")
		run(b, tg, "CREATE TABLE sbtest1 (id INT PRIMARY KEY, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k))")
		for i := 0; i < 10; i++ {
			var vals []string
			for j := 0; j < 1000; j++ {
				id := i*1000 + j + 1
				vals = append(vals, fmt.Sprintf("(%d, %d, '%s', '%s')", id, id%997, strings.Repeat("c", 119), strings.Repeat("p", 59)))
			}
			run(b, tg, "INSERT INTO sbtest1 VALUES "+strings.Join(vals, ","))
		}
	}
	return []benchTarget{fog, mem}
}

func run(b *testing.B, tg benchTarget, q string) {
	ctx := tg.newCtx(q)
	_, it, _, err := tg.e.Query(ctx, q)
	require.NoError(b, err, q)
	_, err = sql.RowIterToRows(ctx, it)
	require.NoError(b, err, q)
}

func BenchmarkPointSelect(b *testing.B) {
	for _, tg := range benchTargets(b) {
		b.Run(tg.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				run(b, tg, fmt.Sprintf("SELECT c FROM sbtest1 WHERE id = %d", i%10000+1))
			}
		})
	}
}

func BenchmarkUpdateByPK(b *testing.B) {
	for _, tg := range benchTargets(b) {
		b.Run(tg.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				run(b, tg, fmt.Sprintf("UPDATE sbtest1 SET k = k + 1 WHERE id = %d", i%10000+1))
			}
		})
	}
}

func BenchmarkRangeSelect(b *testing.B) {
	for _, tg := range benchTargets(b) {
		b.Run(tg.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				lo := i%9900 + 1
				run(b, tg, fmt.Sprintf("SELECT c FROM sbtest1 WHERE id BETWEEN %d AND %d", lo, lo+99))
			}
		})
	}
}
