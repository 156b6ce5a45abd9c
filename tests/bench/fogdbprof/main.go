// Command fogdbprof serves a fogdb node like cmd/fogdb and records a CPU
// profile of it on demand, for benchmark runs (tests/bench/sysbench.sh with
// BENCH_PPROF=1). fogdb itself has no profiling endpoint; this wrapper uses
// only the server package's public API.
//
//	fogdbprof --mysql-addr 127.0.0.1:PORT --data-dir DIR --cpuprofile FILE
//
// SIGUSR1 starts the CPU profile, SIGUSR2 stops it and writes FILE, SIGTERM
// or SIGINT stops the profile if it is running and shuts the node down.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/fogdb/fogdb/server"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("fogdbprof", flag.ContinueOnError)
	fs.StringVar(&cfg.MySQLAddr, "mysql-addr", cfg.MySQLAddr, "MySQL protocol listen address")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", cfg.AdminAddr, "admin HTTP listen address (empty: off)")
	fs.StringVar(&cfg.Cluster.PeerAddr, "peer-addr", cfg.Cluster.PeerAddr, "address for other nodes (Raft); 127.0.0.1:0 lets the kernel pick")
	profPath := fs.String("cpuprofile", "fogdb.cpu.pprof", "CPU profile written between SIGUSR1 and SIGUSR2")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.Logger = log

	srv, err := server.New(cfg)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "err", err)
		srv.Close()
		return 1
	}

	var prof *os.File
	stopProfile := func() error {
		if prof == nil {
			return nil
		}
		pprof.StopCPUProfile()
		err := prof.Close()
		prof = nil
		log.Info("CPU profile written", "path", *profPath)
		return err
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2)
	code := 0
	for s := range sig {
		switch s {
		case syscall.SIGUSR1:
			if prof != nil {
				continue
			}
			f, err := os.Create(*profPath)
			if err != nil {
				log.Error("CPU profile", "err", err)
				code = 1
				continue
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				log.Error("CPU profile", "err", err)
				code = 1
				continue
			}
			prof = f
			log.Info("CPU profile started", "path", *profPath)
			continue
		case syscall.SIGUSR2:
			if err := stopProfile(); err != nil {
				log.Error("CPU profile", "err", err)
				code = 1
			}
			continue
		}
		log.Info("shutting down", "signal", s.String())
		break
	}
	if err := stopProfile(); err != nil {
		fmt.Fprintf(os.Stderr, "fogdbprof: CPU profile: %v\n", err)
		code = 1
	}
	if err := srv.Close(); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return code
}
