package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fogdb/fogdb/wanem"
)

func TestParseFlags(t *testing.T) {
	st, err := parse([]string{
		"--link", "ab=a:b,listen=127.0.0.1:0,target=127.0.0.1:9,delay=25ms,jitter=2ms,bandwidth=1000",
		"--link", "to-c=*:c,listen=127.0.0.1:0,target=127.0.0.1:9",
		"--delay", "a:c=10ms", "--source", "10.0.1.0/24=a", "--seed", "7", "--control-addr", "",
	})
	require.NoError(t, err)
	require.Equal(t, []wanem.LinkConfig{
		{Name: "ab", From: "a", To: "b", Listen: "127.0.0.1:0", Target: "127.0.0.1:9"},
		{Name: "to-c", To: "c", Listen: "127.0.0.1:0", Target: "127.0.0.1:9"},
	}, st.links)
	require.Len(t, st.pairs, 2)
	require.Equal(t, 25*time.Millisecond, *st.pairs[0].delay)
	require.Equal(t, 2*time.Millisecond, *st.pairs[0].jit)
	require.Equal(t, int64(1000), *st.pairs[0].bw)
	require.Equal(t, 10*time.Millisecond, *st.pairs[1].delay)
	require.Equal(t, [][2]string{{"10.0.1.0/24", "a"}}, st.sources)
	require.Equal(t, uint64(7), st.seed)

	for _, bad := range [][]string{
		{},
		{"--link", "ab"},
		{"--link", "ab=a:b,listen=127.0.0.1:0"},
		{"--link", "ab=a:b,listen=127.0.0.1:0,target=x:1,colour=red"},
		{"--link", "ab=a:b,listen=127.0.0.1:0,target=x:1,delay=-1s"},
		{"--link", "ab=*:b,listen=127.0.0.1:0,target=x:1,delay=1s"},
		{"--link", "ab=a:b,listen=127.0.0.1:0,target=x:1", "--delay", "a=1s"},
		{"--link", "ab=a:b,listen=127.0.0.1:0,target=x:1", "--source", "10.0.0.1"},
		{"--link", "ab=a:b,listen=127.0.0.1:0,target=x:1", "extra"},
	} {
		_, err := parse(bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wan.conf")
	require.NoError(t, os.WriteFile(path, []byte(`# two sites
link ab=a:b,listen=127.0.0.1:0,target=127.0.0.1:9
delay a:b=5ms   # one way
control-addr
`), 0o600))
	st, err := parse([]string{"--config", path})
	require.NoError(t, err)
	require.Len(t, st.links, 1)
	require.Equal(t, 5*time.Millisecond, *st.pairs[0].delay)
	require.Equal(t, "", st.controlAddr)
}

// The process's pieces end to end: a link with a delay, and a cut through
// the control endpoint.
func TestStartServesLinksAndControl(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	st, err := parse([]string{
		"--link", "ab=a:b,listen=127.0.0.1:0,target=" + target.Addr().String() + ",delay=15ms",
		"--control-addr", "127.0.0.1:0",
	})
	require.NoError(t, err)
	p, ctl, err := st.start(slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	defer p.Close()
	defer ctl.Close()

	c, err := net.Dial("tcp", p.Link("ab").Addr())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
	start := time.Now()
	_, err = c.Write([]byte("hi"))
	require.NoError(t, err)
	_, err = io.ReadFull(c, make([]byte, 2))
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)

	resp, err := http.Post("http://"+st.controlBound+"/cut?a=a&b=b&mode=reset", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	_, _ = c.Write([]byte("x"))
	_, err = io.ReadFull(c, make([]byte, 1))
	require.Error(t, err, "the cut reset the connection")
	require.Equal(t, int64(1), p.Link("ab").Stats().Resets)
}
