// Command seedexp is the Fog/Edge "seed experiment" at the database level:
// booting VMs with OpenStack Nova over 2 to 8 sites, 10 or 50 ms apart,
// against one central database or a store spread over the sites. It runs
// the SQL a Nova boot sends to its databases (API, cell and placement;
// see boot.go for the sequence, schema.go for the tables) from N clients
// per site, each booting its share of the VMs on its own site's compute
// hosts, against three systems at each point:
//
//   - fogdb: one node per site (this checkout's cmd/fogdb, --site siteN),
//     node 1 bootstrapping and the others joining it, every peer
//     connection through a link of an in-process WAN emulator (package
//     wanem) that delays each byte by the one-way delay; each site's
//     clients talk to their own node directly, as a sidecar's would;
//   - central MariaDB: one MariaDB at site 0, reached by the other sites'
//     clients through a WAN link with the same delay each way;
//   - local MariaDB: the same server with every client connected
//     directly, the workload with no WAN at all (the reference of the
//     "within 1.3x of a single local MariaDB" target).
//
// For each system it reports the seconds for all VMs and per VM, the
// statements and the WAN round trips (request turns on the emulator's
// links) per VM, and the servers' CPU time, checks that every boot left
// what it should (instances active on their site's hosts, allocations,
// provider generations, compute node usage, on every fogdb node), and
// writes a markdown table and a PNG chart of seconds against sites.
//
//	seedexp --fogdb ./fogdb --work /tmp/w --mariadb 127.0.0.1:PORT --mariadb-pid PID \
//	        --sites 2,4 --latencies 10ms --vms 100 --out results.md --chart seed.png
//
// tests/bench/seed.sh builds it and fogdb, starts the MariaDB and runs it;
// docs/BENCHMARKS.md ("Seed experiment") has the results.
package main
