package server

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// slogHclog is an hclog.Logger writing into a slog.Logger, so that raft's
// and the peer port's lines become records of the node's own log, each with
// its fields as attributes (and "logger" naming the subsystem), rather than
// text formatted by hclog and wrapped in another record.
type slogHclog struct {
	h     slog.Handler
	name  string
	args  []any
	level *slogLevel
}

// slogLevel is shared by a logger and those derived from it, as hclog
// expects of SetLevel.
type slogLevel struct{ v hclog.Level }

// newHclog returns an hclog.Logger named name over l's handler.
func newHclog(l *slog.Logger, name string) hclog.Logger {
	return &slogHclog{h: l.Handler(), name: name, level: &slogLevel{v: hclog.Trace}}
}

var _ hclog.Logger = (*slogHclog)(nil)

func toSlogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (l *slogHclog) enabled(level hclog.Level) bool {
	if level == hclog.Off || (l.level.v != hclog.NoLevel && level < l.level.v) {
		return false
	}
	return l.h.Enabled(context.Background(), toSlogLevel(level))
}

// Log turns hclog's alternating keys and values into slog attributes.
func (l *slogHclog) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	if !l.enabled(level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:])
	r := slog.NewRecord(time.Now(), toSlogLevel(level), msg, pcs[0])
	if l.name != "" {
		r.AddAttrs(slog.String("logger", l.name))
	}
	addPairs(&r, l.args)
	addPairs(&r, args)
	_ = l.h.Handle(context.Background(), r)
}

func addPairs(r *slog.Record, kv []any) {
	for i := 0; i < len(kv); i += 2 {
		key := fmt.Sprint(kv[i])
		if i+1 == len(kv) {
			// hclog's convention for a key without a value.
			r.AddAttrs(slog.Any("EXTRA_VALUE_AT_END", attrValue(kv[i])))
			return
		}
		r.AddAttrs(slog.Any(key, attrValue(kv[i+1])))
	}
}

// attrValue gives values the form hclog would print: errors and Stringers
// as text (a JSON handler would otherwise marshal their fields), hclog's
// format helpers applied.
func attrValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case error:
		return x.Error()
	case hclog.Format:
		if len(x) == 0 {
			return ""
		}
		return fmt.Sprintf(fmt.Sprint(x[0]), x[1:]...)
	case hclog.Hex:
		return fmt.Sprintf("0x%x", int64(x))
	case hclog.Octal:
		return fmt.Sprintf("0%o", int64(x))
	case hclog.Binary:
		return fmt.Sprintf("0b%b", int64(x))
	case hclog.Quote:
		return fmt.Sprintf("%q", string(x))
	case fmt.Stringer:
		return x.String()
	case func() string:
		return x()
	}
	return v
}

func (l *slogHclog) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *slogHclog) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *slogHclog) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *slogHclog) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *slogHclog) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *slogHclog) IsTrace() bool { return l.enabled(hclog.Trace) }
func (l *slogHclog) IsDebug() bool { return l.enabled(hclog.Debug) }
func (l *slogHclog) IsInfo() bool  { return l.enabled(hclog.Info) }
func (l *slogHclog) IsWarn() bool  { return l.enabled(hclog.Warn) }
func (l *slogHclog) IsError() bool { return l.enabled(hclog.Error) }

func (l *slogHclog) ImpliedArgs() []any { return l.args }

func (l *slogHclog) With(args ...any) hclog.Logger {
	c := *l
	c.args = append(append([]any(nil), l.args...), args...)
	return &c
}

func (l *slogHclog) Name() string { return l.name }

func (l *slogHclog) Named(name string) hclog.Logger {
	c := *l
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	return &c
}

func (l *slogHclog) ResetNamed(name string) hclog.Logger {
	c := *l
	c.name = name
	return &c
}

func (l *slogHclog) SetLevel(level hclog.Level) { l.level.v = level }
func (l *slogHclog) GetLevel() hclog.Level      { return l.level.v }

// StandardLogger serves libraries that want a *log.Logger: each line they
// print becomes one record at the inferred or default level.
func (l *slogHclog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

func (l *slogHclog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	w := &stdWriter{l: l, level: hclog.Info}
	if opts != nil {
		w.infer = opts.InferLevels
		if opts.ForceLevel != hclog.NoLevel {
			w.level, w.infer = opts.ForceLevel, false
		}
	}
	return w
}

type stdWriter struct {
	l     *slogHclog
	level hclog.Level
	infer bool
}

func (w *stdWriter) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	level := w.level
	if w.infer {
		for prefix, lv := range map[string]hclog.Level{
			"[TRACE]": hclog.Trace, "[DEBUG]": hclog.Debug, "[INFO]": hclog.Info,
			"[WARN]": hclog.Warn, "[ERROR]": hclog.Error, "[ERR]": hclog.Error,
		} {
			if rest, ok := strings.CutPrefix(msg, prefix); ok {
				msg, level = strings.TrimSpace(rest), lv
				break
			}
		}
	}
	w.l.Log(level, msg)
	return len(p), nil
}
