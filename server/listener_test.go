package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// flakyListener fails its first n accepts with err, then accepts for real.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
	err   error
	// failing is closed once the first failure has been returned and
	// release is waited on before the second one ends the streak.
	failing chan struct{}
	release chan struct{}
	calls   int
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	f.calls++
	calls := f.calls
	fail := f.fails > 0
	if fail {
		f.fails--
	}
	f.mu.Unlock()
	if calls == 2 {
		close(f.failing)
		<-f.release
	}
	if fail {
		return nil, f.err
	}
	return f.Listener.Accept()
}

// The accept loop above the listener returns on its first error, so a
// listener that runs out of file descriptors once would never accept
// again: mysqlListener retries, and reports the streak where /readyz
// shows it.
func TestListenerRetriesFailedAccepts(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: fmt.Errorf("accept4: %w", syscall.EMFILE)}
	fl := &flakyListener{Listener: inner, fails: 3, err: emfile, failing: make(chan struct{}), release: make(chan struct{})}
	var logged strings.Builder
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logged}, nil))
	l := newMySQLListener(fl, log, nil)
	defer l.Close()

	s := &Server{admin: &admin{}, mln: l}
	s.admin.ready.Store(true)
	ready := func() (int, string) {
		rec := httptest.NewRecorder()
		s.handleReady(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	code, _ := ready()
	require.Equal(t, http.StatusOK, code)

	accepted := make(chan net.Conn, 1)
	acceptErr := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			acceptErr <- err
			return
		}
		accepted <- c
	}()
	select {
	case <-fl.failing:
	case err := <-acceptErr:
		t.Fatalf("Accept gave up on a temporary error: %v", err)
	case <-time.After(adminPatience):
		t.Fatal("Accept did not retry")
	}
	code, body := ready()
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "too many open files")
	close(fl.release)

	client, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	select {
	case c := <-accepted:
		defer c.Close()
	case err := <-acceptErr:
		t.Fatalf("Accept gave up on a temporary error: %v", err)
	case <-time.After(adminPatience):
		t.Fatal("Accept did not return the connection")
	}
	code, _ = ready()
	require.Equal(t, http.StatusOK, code)
	logMu.Lock()
	require.Contains(t, logged.String(), "too many open files")
	require.Contains(t, logged.String(), "accepting connections again")
	logMu.Unlock()

	// Closing ends Accept for good, and that is not a failure.
	require.NoError(t, l.Close())
	_, err = l.Accept()
	require.True(t, errors.Is(err, net.ErrClosed), "%v", err)
	l.loopReturned()
	code, _ = ready()
	require.Equal(t, http.StatusOK, code)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
