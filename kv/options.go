package kv

import (
	"fmt"
	"log/slog"
	"time"
)

const (
	// DefaultGCInterval is the GCInterval of DefaultOptions.
	DefaultGCInterval = 10 * time.Second
	// DefaultOpenTimeout is the OpenTimeout of DefaultOptions, also used
	// when OpenTimeout is zero.
	DefaultOpenTimeout = 5 * time.Second
)

// Options configures an Engine. Build it with DefaultOptions and override
// fields; Open validates it.
type Options struct {
	// Path is the bbolt data file, created when missing.
	Path string
	// GCInterval is how often old versions are collected in the background.
	// Zero disables background collection; GC still works when called.
	GCInterval time.Duration
	// Clock stamps commits. Nil means NewClock(time.Now). Engines of one
	// node should share one Clock.
	Clock *Clock
	// Logger receives the engine's few log lines. Nil means slog.Default().
	Logger *slog.Logger
	// OpenTimeout bounds the wait for bbolt's file lock, so a second process
	// started on the same data directory fails with ErrLocked instead of
	// hanging. Zero means DefaultOpenTimeout.
	OpenTimeout time.Duration
}

// DefaultOptions returns the options for a data file at path.
func DefaultOptions(path string) Options {
	return Options{
		Path:        path,
		GCInterval:  DefaultGCInterval,
		OpenTimeout: DefaultOpenTimeout,
	}
}

// Validate reports the first option that cannot work; the error wraps
// ErrInvalidOptions.
func (o Options) Validate() error {
	switch {
	case o.Path == "":
		return fmt.Errorf("%w: Path is empty", ErrInvalidOptions)
	case o.GCInterval < 0:
		return fmt.Errorf("%w: GCInterval %s is negative", ErrInvalidOptions, o.GCInterval)
	case o.OpenTimeout < 0:
		return fmt.Errorf("%w: OpenTimeout %s is negative", ErrInvalidOptions, o.OpenTimeout)
	}
	return nil
}

// withDefaults fills the fields whose zero value means "the default".
func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = NewClock(time.Now)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OpenTimeout == 0 {
		o.OpenTimeout = DefaultOpenTimeout
	}
	return o
}
