package wanem

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestControlEndpoint(t *testing.T) {
	p := newProxy(t)
	srv := startServer(t, echo)
	l := listen(t, p, LinkConfig{Name: "ab", From: "a", To: "b", Target: srv.Addr()})
	hs := httptest.NewServer(p.Handler())
	defer hs.Close()
	post := func(path string, q url.Values) int {
		t.Helper()
		resp, err := http.Post(hs.URL+path+"?"+q.Encode(), "", nil)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}

	require.Equal(t, http.StatusNoContent, post("/delay", url.Values{"a": {"a"}, "b": {"b"}, "delay": {"20ms"}}))
	require.Equal(t, 20*time.Millisecond, p.Delay("b", "a"))
	require.Equal(t, http.StatusNoContent, post("/delay", url.Values{"a": {"b"}, "b": {"a"}, "delay": {"30ms"}, "oneway": {"true"}}))
	require.Equal(t, 30*time.Millisecond, p.Delay("b", "a"))
	require.Equal(t, 20*time.Millisecond, p.Delay("a", "b"))
	require.Equal(t, http.StatusNoContent, post("/jitter", url.Values{"a": {"a"}, "b": {"b"}, "jitter": {"1ms"}}))
	require.Equal(t, http.StatusNoContent, post("/bandwidth", url.Values{"a": {"a"}, "b": {"b"}, "bps": {"0"}}))
	c := dial(t, l.Addr())
	require.GreaterOrEqual(t, roundTrip(t, c, "x"), 48*time.Millisecond)

	require.Equal(t, http.StatusNoContent, post("/cut", url.Values{"a": {"b"}, "b": {"a"}, "mode": {"reset"}}))
	requireBroken(t, c)
	require.Equal(t, http.StatusNoContent, post("/heal", nil))
	roundTrip(t, dial(t, l.Addr()), "y")

	require.Equal(t, http.StatusNoContent, post("/cut", url.Values{"link": {"ab"}}))
	require.Equal(t, Blackhole, l.CutMode())
	require.Equal(t, http.StatusNoContent, post("/heal", url.Values{"link": {"ab"}}))
	require.Equal(t, Mode(0), l.CutMode())

	require.Equal(t, http.StatusNotFound, post("/cut", url.Values{"link": {"nope"}}))
	require.Equal(t, http.StatusBadRequest, post("/cut", url.Values{"a": {"a"}}))
	require.Equal(t, http.StatusBadRequest, post("/cut", url.Values{"a": {"a"}, "b": {"b"}, "mode": {"drop"}}))
	require.Equal(t, http.StatusBadRequest, post("/delay", url.Values{"a": {"a"}, "b": {"b"}, "delay": {"-1s"}}))

	resp, err := http.Get(hs.URL + "/links")
	require.NoError(t, err)
	defer resp.Body.Close()
	var links []LinkStatus
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&links))
	require.Len(t, links, 1)
	require.Equal(t, "ab", links[0].Name)
	require.Equal(t, l.Addr(), links[0].Listen)
	require.Equal(t, int64(2), links[0].Stats.Conns)
	require.Equal(t, int64(1), links[0].Stats.Resets)
	require.Equal(t, int64(2), links[0].Stats.Up.Bytes)
}
