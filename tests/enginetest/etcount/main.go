// Command etcount compares go-mysql-server's engine tests run against the
// memory backend (tests named TestMemoryX) and against fogdb (TestFogdbX),
// reading `go test -json` output on standard input. Subtests are counted at
// every level. A fogdb skip of a subtest that passes on memory counts as a
// failure. It prints the fogdb counts on the last line, in the form
//
//	enginetest: N passed, M failed, K skipped
//
// A subtest that passes on memory and did not run on fogdb counts as failed.
//
// and exits non-zero when fogdb passes less than -min percent of what
// passes on memory, or fails a transaction script not in -allow.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action string
	Test   string
}

func main() {
	min := flag.Float64("min", 97, "minimum percentage of memory-passing subtests fogdb must pass")
	failures := flag.String("failures", "", "write the failing fogdb subtests to this file")
	allow := flag.String("allow", "", "file of transaction scripts allowed to fail, one per line, '#' comments")
	flag.Parse()

	mem := map[string]string{}
	fog := map[string]string{}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Test == "" {
			continue
		}
		if ev.Action != "pass" && ev.Action != "fail" && ev.Action != "skip" {
			continue
		}
		switch {
		case strings.HasPrefix(ev.Test, "TestMemory"):
			mem[strings.TrimPrefix(ev.Test, "TestMemory")] = ev.Action
		case strings.HasPrefix(ev.Test, "TestFogdb"):
			fog[strings.TrimPrefix(ev.Test, "TestFogdb")] = ev.Action
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "etcount:", err)
		os.Exit(2)
	}

	allowed := map[string]bool{}
	if *allow != "" {
		data, err := os.ReadFile(*allow)
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcount:", err)
			os.Exit(2)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				// A reason follows " #"; test names may contain '#' themselves.
				if i := strings.Index(line, " #"); i >= 0 {
					line = line[:i]
				}
				allowed[strings.TrimSpace(line)] = true
			}
		}
	}

	var passed, failed, skipped, memPassed, bothPassed int
	var failing, badTxn []string
	for name, res := range fog {
		m := mem[name]
		if m == "pass" {
			memPassed++
		}
		switch res {
		case "pass":
			passed++
			if m == "pass" {
				bothPassed++
			}
		case "fail":
			failed++
			failing = append(failing, name)
		case "skip":
			if m == "pass" {
				failed++
				failing = append(failing, name+" (skipped on fogdb, passes on memory)")
			} else {
				skipped++
			}
		}
		if res != "pass" && strings.HasPrefix(name, "TransactionScripts/") && strings.Count(name, "/") == 1 && !allowed[name] {
			badTxn = append(badTxn, name)
		}
	}
	// A subtest that passes on memory but never ran on fogdb (its suite
	// crashed or stopped early) is a failure too.
	for name, m := range mem {
		if _, ran := fog[name]; !ran && m == "pass" {
			memPassed++
			failed++
			failing = append(failing, name+" (did not run on fogdb)")
		}
	}
	sort.Strings(failing)
	sort.Strings(badTxn)
	if *failures != "" {
		if err := os.WriteFile(*failures, []byte(strings.Join(failing, "\n")+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "etcount:", err)
		}
	}
	pct := 100.0
	if memPassed > 0 {
		pct = 100 * float64(bothPassed) / float64(memPassed)
	}
	fmt.Printf("memory: %d subtests pass; fogdb passes %d of them (%.2f%%)\n", memPassed, bothPassed, pct)
	for _, n := range badTxn {
		fmt.Printf("transaction script failing and not allowed: %s\n", n)
	}
	fmt.Printf("enginetest: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if pct < *min || len(badTxn) > 0 || len(fog) == 0 {
		os.Exit(1)
	}
}
