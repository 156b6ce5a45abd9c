package main

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/fogdb/fogdb/wanem"
)

// mariaServer is the MariaDB the driving script started (at site 0).
type mariaServer struct {
	addr string
	pid  int
}

func (m mariaServer) alive() error {
	if m.pid <= 0 {
		return nil
	}
	if err := syscall.Kill(m.pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("mariadbd (pid %d) is gone: %w", m.pid, err)
	}
	return nil
}

func (m mariaServer) cpu() (float64, error) {
	if m.pid <= 0 {
		return 0, nil
	}
	return procCPU(m.pid)
}

// centralWAN puts a WAN link between each site other than site 0 and the
// MariaDB at site 0: clients of site s connect to links[s] and every byte
// is delay late each way. Site 0's clients connect directly.
type centralWAN struct {
	proxy *wanem.Proxy
	links []*wanem.Link // nil for site 0
}

func startCentralWAN(m mariaServer, sites int, delay time.Duration) (*centralWAN, error) {
	cw := &centralWAN{proxy: wanem.New(wanem.DefaultConfig()), links: make([]*wanem.Link, sites)}
	for s := 1; s < sites; s++ {
		l, err := cw.proxy.Listen(wanem.LinkConfig{
			Name: "mariadb-from-" + siteName(s), From: siteName(s), To: siteName(0),
			Listen: "127.0.0.1:0", Target: m.addr,
		})
		if err != nil {
			cw.proxy.Close()
			return nil, err
		}
		cw.proxy.SetDelay(siteName(s), siteName(0), delay)
		cw.links[s] = l
	}
	return cw, nil
}

func (cw *centralWAN) close() { cw.proxy.Close() }

func (cw *centralWAN) system(m mariaServer, delay time.Duration) system {
	sys := system{name: "central MariaDB", latency: delay, seedAddr: m.addr, checkAddrs: []string{m.addr}, alive: m.alive}
	for _, l := range cw.links {
		if l == nil {
			sys.siteAddrs = append(sys.siteAddrs, m.addr)
		} else {
			sys.siteAddrs = append(sys.siteAddrs, l.Addr())
		}
	}
	sys.sample = func() (sample, error) {
		s := sample{siteTurns: map[string]int64{}}
		var err error
		if s.cpu, err = m.cpu(); err != nil {
			return s, err
		}
		for _, l := range cw.links {
			if l == nil {
				continue
			}
			st := l.Stats()
			s.turns += st.Up.Turns
			s.siteTurns[siteName(0)] += st.Up.Turns
			s.bytes += st.Up.Bytes + st.Down.Bytes
		}
		return s, nil
	}
	return sys
}

// localSystem is the same MariaDB with every site's clients connected
// directly: the workload with no WAN at all.
func localSystem(m mariaServer, sites int) system {
	sys := system{name: "local MariaDB", seedAddr: m.addr, checkAddrs: []string{m.addr}, alive: m.alive}
	for range sites {
		sys.siteAddrs = append(sys.siteAddrs, m.addr)
	}
	sys.sample = func() (sample, error) {
		cpu, err := m.cpu()
		return sample{cpu: cpu}, err
	}
	return sys
}
