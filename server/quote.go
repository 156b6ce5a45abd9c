package server

import (
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

// MySQL quotes at most 80 characters of the statement near a syntax error
// (ER_PARSE_ERROR's "%.80s") and cuts every error message to
// MYSQL_ERRMSG_SIZE (512 bytes with its terminator). A multi-megabyte
// statement otherwise came back whole in its error, and in the log line.
const (
	nearQuoteChars = 80
	errMsgMaxBytes = 511
	// logValueMaxBytes bounds each value of the engine's log lines.
	logValueMaxBytes = 1024
)

// cutChars is s cut to n characters.
func cutChars(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// cutBytes is s cut to at most n bytes, on a character boundary.
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

var logHookOnce sync.Once

// cutEngineLogs bounds what the engine (which logs with logrus) writes per
// value: it logs every failed statement's error, and a parse error carries
// the token it failed at, a string literal of any size.
func cutEngineLogs() {
	logHookOnce.Do(func() { logrus.AddHook(cutLogHook{}) })
}

type cutLogHook struct{}

func (cutLogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (cutLogHook) Fire(e *logrus.Entry) error {
	e.Message = cutLogValue(e.Message)
	for k, v := range e.Data {
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		default:
			continue
		}
		if len(s) > logValueMaxBytes {
			e.Data[k] = cutLogValue(s)
		}
	}
	return nil
}

func cutLogValue(s string) string {
	if len(s) <= logValueMaxBytes {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", cutBytes(s, logValueMaxBytes), len(s))
}
