package wire

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// A huge statement with a syntax error is quoted in its error as MySQL
// quotes it (80 characters near the error, a message of at most 512
// bytes), and the log does not repeat it.
func TestSyntaxErrorQuoteIsCut(t *testing.T) {
	_, db := startNode(t)
	logged := &syncBuffer{}
	logrus.SetOutput(logged)
	t.Cleanup(func() { logrus.SetOutput(os.Stderr) })

	big := strings.Repeat("x", 4<<20)
	for _, q := range []string{
		"SELECT '" + big + "' 'y' )",
		"SELECT 1 FROM dual WHERE " + strings.Repeat("1 = 1 AND ", 200000) + ")",
		"SELECT `" + strings.Repeat("é", 100) + "` `x` )",
	} {
		_, err := db.Exec(q)
		me := requireMySQLError(t, err, 1064, "42000")
		require.LessOrEqual(t, len(me.Message), 511, "error message of %d bytes", len(me.Message))
		require.True(t, strings.HasPrefix(me.Message, "You have an error in your SQL syntax;"), "%.200s", me.Message)
		i := strings.Index(me.Message, "near '")
		require.GreaterOrEqual(t, i, 0, "%s", me.Message)
		near := strings.TrimSuffix(me.Message[i+len("near '"):], "' at line 1")
		require.LessOrEqual(t, len([]rune(near)), 80, "quoted: %q", near)
	}
	require.Less(t, logged.Len(), 64<<10, "the log grew by %d bytes for three statements", logged.Len())
}
