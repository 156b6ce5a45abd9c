package replication

import (
	"bytes"
	"io"

	"github.com/hashicorp/raft"
)

type memSink struct {
	buf       []byte
	cancelled bool
}

func (s *memSink) Write(p []byte) (int, error) { s.buf = append(s.buf, p...); return len(p), nil }
func (s *memSink) Close() error                { return nil }
func (s *memSink) ID() string                  { return "mem" }
func (s *memSink) Cancel() error               { s.cancelled = true; return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
