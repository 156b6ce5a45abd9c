package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sirupsen/logrus"
)

// newLogger builds the node's logger: text for a terminal, JSON (one object
// a line) for a container platform's collector.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
}

// bridgeLibraryLogs sends what the libraries under the SQL layer print into
// the node's logger, so the process writes one format only: the standard
// log package (vitess's protocol messages) through slog's default, and
// go-mysql-server's logrus through a hook.
func bridgeLibraryLogs(l *slog.Logger) {
	slog.SetDefault(l)
	logrus.SetOutput(io.Discard)
	// Never below info: at debug go-mysql-server attaches each statement's
	// text, and a statement can hold a password (CREATE USER ...
	// IDENTIFIED BY).
	logrus.SetLevel(logrus.InfoLevel)
	logrus.StandardLogger().ReplaceHooks(logrus.LevelHooks{})
	logrus.AddHook(logrusHook{h: l.Handler()})
}

type logrusHook struct{ h slog.Handler }

func (logrusHook) Levels() []logrus.Level { return logrus.AllLevels }

// Fire turns an entry into a record with its fields as attributes. Its
// "query" field is dropped whatever the level: a statement's text can hold
// a password, and no redaction of arbitrary SQL is reliable.
func (k logrusHook) Fire(e *logrus.Entry) error {
	var lvl slog.Level
	switch e.Level {
	case logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel:
		lvl = slog.LevelError
	case logrus.WarnLevel:
		lvl = slog.LevelWarn
	default:
		// go-mysql-server reports every connection opened and closed at
		// info: chatter at a node's scale.
		lvl = slog.LevelDebug
	}
	if !k.h.Enabled(context.Background(), lvl) {
		return nil
	}
	r := slog.NewRecord(e.Time, lvl, e.Message, 0)
	if e.Time.IsZero() {
		r.Time = time.Now()
	}
	r.AddAttrs(slog.String("logger", "sql"))
	for key, v := range e.Data {
		if key == "query" {
			continue
		}
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		r.AddAttrs(slog.Any(key, v))
	}
	return k.h.Handle(context.Background(), r)
}
