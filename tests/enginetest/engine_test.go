//go:build enginetest

package enginetest

import (
	"testing"

	"github.com/dolthub/go-mysql-server/enginetest"
)

// Each suite runs twice, TestMemoryX against go-mysql-server's own memory
// backend and TestFogdbX against fogdb, so tests/enginetest.sh can compare
// them subtest by subtest.

func memoryHarness() *enginetest.MemoryHarness { return enginetest.NewDefaultMemoryHarness() }

func TestMemoryQueries(t *testing.T) { enginetest.TestQueries(t, memoryHarness()) }
func TestFogdbQueries(t *testing.T)  { enginetest.TestQueries(t, newFogHarness(t)) }
func TestMemoryQueriesPrepared(t *testing.T) {
	enginetest.TestQueriesPrepared(t, memoryHarness())
}
func TestFogdbQueriesPrepared(t *testing.T) { enginetest.TestQueriesPrepared(t, newFogHarness(t)) }
func TestMemoryInsertInto(t *testing.T)     { enginetest.TestInsertInto(t, memoryHarness()) }
func TestFogdbInsertInto(t *testing.T)      { enginetest.TestInsertInto(t, newFogHarness(t)) }
func TestMemoryUpdate(t *testing.T)         { enginetest.TestUpdate(t, memoryHarness()) }
func TestFogdbUpdate(t *testing.T)          { enginetest.TestUpdate(t, newFogHarness(t)) }
func TestMemoryDelete(t *testing.T)         { enginetest.TestDelete(t, memoryHarness()) }
func TestFogdbDelete(t *testing.T)          { enginetest.TestDelete(t, newFogHarness(t)) }
func TestMemoryReplaceInto(t *testing.T)    { enginetest.TestReplaceInto(t, memoryHarness()) }
func TestFogdbReplaceInto(t *testing.T)     { enginetest.TestReplaceInto(t, newFogHarness(t)) }
func TestMemoryScripts(t *testing.T)        { enginetest.TestScripts(t, memoryHarness()) }
func TestFogdbScripts(t *testing.T)         { enginetest.TestScripts(t, newFogHarness(t)) }
func TestMemoryForeignKeys(t *testing.T)    { enginetest.TestForeignKeys(t, memoryHarness()) }
func TestFogdbForeignKeys(t *testing.T)     { enginetest.TestForeignKeys(t, newFogHarness(t)) }
func TestMemoryAlterTable(t *testing.T)     { enginetest.TestAlterTable(t, memoryHarness()) }
func TestFogdbAlterTable(t *testing.T)      { enginetest.TestAlterTable(t, newFogHarness(t)) }
func TestMemoryIndexes(t *testing.T)        { enginetest.TestIndexes(t, memoryHarness()) }
func TestFogdbIndexes(t *testing.T)         { enginetest.TestIndexes(t, newFogHarness(t)) }
func TestMemoryChecksOnInsert(t *testing.T) { enginetest.TestChecksOnInsert(t, memoryHarness()) }
func TestFogdbChecksOnInsert(t *testing.T)  { enginetest.TestChecksOnInsert(t, newFogHarness(t)) }
func TestMemoryTransactionScripts(t *testing.T) {
	enginetest.TestTransactionScripts(t, memoryHarness())
}
func TestFogdbTransactionScripts(t *testing.T) {
	enginetest.TestTransactionScripts(t, newFogHarness(t))
}
func TestMemoryConcurrentTransactions(t *testing.T) {
	enginetest.TestConcurrentTransactions(t, memoryHarness())
}
func TestFogdbConcurrentTransactions(t *testing.T) {
	enginetest.TestConcurrentTransactions(t, newFogHarness(t))
}
