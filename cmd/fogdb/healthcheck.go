package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/fogdb/fogdb/server"
)

// healthcheck asks a node's admin API whether it is ready, for container
// health checks where no HTTP client exists (a scratch image): exit 0 when
// /readyz answers 200, 1 otherwise.
func healthcheck(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("fogdb healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("admin-addr", server.DefaultConfig().AdminAddr, "the node's admin API address, as given to fogdb serve")
	timeout := fs.Duration("timeout", 3*time.Second, "longest wait for the answer")
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fogdb healthcheck: unexpected arguments %q\n", fs.Args())
		return 2
	}
	target, err := dialableAdmin(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "fogdb healthcheck: --admin-addr: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+"/readyz", nil)
	if err != nil {
		fmt.Fprintf(stderr, "fogdb healthcheck: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "fogdb healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "fogdb healthcheck: %s: %s %s", target, resp.Status, body)
		return 1
	}
	return 0
}

// dialableAdmin turns a listen address into one to dial: a node listening
// on every address (":7070", "0.0.0.0:7070") is reached on loopback, which
// is where the health check runs.
func dialableAdmin(addr string) (string, error) {
	if addr == "" {
		return "", fmt.Errorf("empty: the admin API is disabled, nothing to ask")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		if ip.To4() != nil {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}
