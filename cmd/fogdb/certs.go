package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/fogdb/fogdb/pki"
)

// certs makes a cluster CA and node certificates:
//
//	fogdb certs init  --dir D [--if-missing]                 D/ca.crt, D/ca.key
//	fogdb certs issue --dir D --name N --host H... [--out O] O/N.crt, O/N.key (O/ca.crt)
//
// A node certificate serves both as a TLS server (MySQL clients, peers
// dialling in) and a TLS client (dialling peers), so one per node does.
func certs(args []string, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "fogdb certs: init or issue?")
		return 2
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("fogdb certs "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "certs", "directory of the CA's files and the certificates")
	days := fs.Int("days", 0, "validity in days (default: 3650 for the CA, 825 for a node)")
	var name, out string
	var hosts multiFlag
	var ifMissing bool
	if sub == "init" {
		fs.BoolVar(&ifMissing, "if-missing", false, "keep an existing CA and exit 0 (for a setup step run on every start)")
	}
	if sub == "issue" {
		fs.StringVar(&out, "out", "", "directory of the new pair, with a copy of ca.crt (default: --dir); a node's own directory, without the CA's key")
		fs.StringVar(&name, "name", "", "the certificate's name: its common name and its files' base name (the node's ID, say)")
		fs.Var(&hosts, "host", "DNS name or IP address the node is reached at (repeat, or separate by commas)")
	} else if sub != "init" {
		fmt.Fprintf(stderr, "fogdb certs: unknown command %q (init, issue)\n", sub)
		return 2
	}
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	var err error
	switch sub {
	case "init":
		err = pki.InitCA(*dir, *days)
		if ifMissing && errors.Is(err, pki.ErrCAExists) {
			err = nil
		}
	case "issue":
		if out == "" {
			out = *dir
		}
		err = pki.IssueInto(*dir, out, name, hosts, *days)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fogdb certs %s: %v\n", sub, err)
		return 1
	}
	return 0
}

type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error {
	for h := range strings.SplitSeq(v, ",") {
		if h = strings.TrimSpace(h); h != "" {
			*m = append(*m, h)
		}
	}
	return nil
}
