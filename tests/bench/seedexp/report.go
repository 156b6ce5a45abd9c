package main

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// report collects the results of a run and prints them.
type report struct {
	c             *config
	started       time.Time
	results       []result
	placementNote string
	mariaVersion  string
	loadBefore    string
	loadAfter     string
}

func newReport(c *config) *report { return &report{c: c, started: time.Now().UTC()} }

func (r *report) add(x result) { r.results = append(r.results, x) }

// The Fog/Edge study's figures: seconds to boot 500 VMs with Nova over a
// central MySQL, by site count, for each one-way delay. Full Nova (API,
// RPC, scheduler, hypervisor) rather than its SQL alone, so only their
// shape compares with this program's.
var studyCentral = map[time.Duration]map[int]float64{
	10 * time.Millisecond: {2: 209, 4: 139, 6: 123, 8: 422},
	50 * time.Millisecond: {2: 268, 4: 203, 6: 184, 8: 759},
}

func (r *report) find(system string, sites int, lat time.Duration) (result, bool) {
	for _, x := range r.results {
		if x.system == system && x.sites == sites && x.latency == lat {
			return x, true
		}
	}
	return result{}, false
}

func (r *report) hasMetric() bool {
	for _, x := range r.results {
		if x.hasMetric {
			return true
		}
	}
	return false
}

func machine() string {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			mem = fmt.Sprintf("%.1f GiB", kb/1048576)
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s", runtime.NumCPU(), cpu, mem)
}

func (r *report) header() string {
	c := r.c
	var b strings.Builder
	fmt.Fprintf(&b, "Seed experiment at the database level: %d VMs per point, %d clients per site, %d compute hosts per site; ",
		c.vms, c.clients, c.hosts)
	if c.fogdbVersion != "" {
		fmt.Fprintf(&b, "fogdb %s", c.fogdbVersion)
	} else {
		b.WriteString("fogdb")
	}
	if r.placementNote != "" {
		fmt.Fprintf(&b, " (%s)", r.placementNote)
	}
	if r.mariaVersion != "" {
		fmt.Fprintf(&b, ", MariaDB %s", r.mariaVersion)
	}
	fmt.Fprintf(&b, "; %s; %s; load average before %s, after %s", machine(), r.started.Format("2006-01-02 15:04 UTC"),
		r.loadBefore, r.loadAfter)
	return b.String()
}

func fmtF(x float64, prec int) string { return fmt.Sprintf("%.*f", prec, x) }

// rows are the result table's cells, one row per result.
func (r *report) rows() (head []string, rows [][]string) {
	head = []string{"sites", "one-way delay", "system", "total (s)", "s per VM", "mean boot (s)", "statements per VM",
		"WAN round trips per VM", "by receiving site", "idle background per VM", "WAN KiB per VM", "server CPU (s)", "retries (txn / claim)"}
	metric := r.hasMetric()
	if metric {
		head = append(head, "fogdb_wan_round_trips_total per VM")
	}
	res := append([]result(nil), r.results...)
	order := map[string]int{"local MariaDB": 0, "central MariaDB": 1, "fogdb": 2}
	sort.SliceStable(res, func(i, j int) bool {
		a, b := res[i], res[j]
		if a.sites != b.sites {
			return a.sites < b.sites
		}
		if a.latency != b.latency {
			return a.latency < b.latency
		}
		return order[a.system] < order[b.system]
	})
	for _, x := range res {
		bg, turns := "", fmtF(x.perVM(float64(x.turns)), 1)
		if x.system == "fogdb" && r.c.idle > 0 {
			bg = fmtF(x.perVM(x.background), 1)
		}
		if x.system == "local MariaDB" {
			turns = "0"
		}
		row := []string{fmt.Sprint(x.sites), latencyLabel(x.latency), x.system, fmtF(x.seconds, 2), fmtF(x.perVM(x.seconds), 3),
			fmtF(x.meanBoot.Seconds(), 3), fmtF(x.perVM(float64(x.stmts)), 1), turns, x.bySite(), bg,
			fmtF(x.perVM(float64(x.bytes))/1024, 1), fmtF(x.cpu, 1), fmt.Sprintf("%d / %d", x.retries, x.claimRetries)}
		if metric {
			m := ""
			if x.hasMetric {
				m = fmtF(x.perVM(x.metric), 1)
			}
			row = append(row, m)
		}
		rows = append(rows, row)
	}
	return head, rows
}

// ratios compares the systems at each point: fogdb and central MariaDB
// against the local MariaDB of the same site count.
func (r *report) ratios() (head []string, rows [][]string) {
	head = []string{"sites", "one-way delay", "fogdb / local MariaDB", "central MariaDB / local MariaDB", "fogdb / central MariaDB",
		"study: central MySQL, full Nova (s)"}
	for _, n := range r.c.sites {
		local, hasLocal := r.find("local MariaDB", n, 0)
		for _, d := range r.c.latencies {
			fog, hasFog := r.find("fogdb", n, d)
			cen, hasCen := r.find("central MariaDB", n, d)
			if !hasFog && !hasCen {
				continue
			}
			div := func(a result, okA bool, b result, okB bool) string {
				if !okA || !okB || b.seconds == 0 {
					return ""
				}
				return fmtF(a.seconds/b.seconds, 2)
			}
			study := ""
			if s, ok := studyCentral[d][n]; ok {
				study = fmtF(s, 0)
			}
			rows = append(rows, []string{fmt.Sprint(n), latencyLabel(d), div(fog, hasFog, local, hasLocal),
				div(cen, hasCen, local, hasLocal), div(fog, hasFog, cen, hasCen), study})
		}
	}
	return head, rows
}

func mdTable(head []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|")
	for i := range head {
		if i < 3 {
			b.WriteString("---|")
		} else {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

func textTable(head []string, rows [][]string) string {
	w := make([]int, len(head))
	for i, h := range head {
		w[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			w[i] = max(w[i], len(c))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			fmt.Fprintf(&b, "%-*s  ", w[i], c)
		}
		b.WriteString("\n")
	}
	line(head)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

const notes = `WAN round trips count request turns on the emulated WAN links (wanem's Up.Turns: the chunks that
start a request after the other side has spoken). For the central MariaDB that is one per statement,
BEGIN or COMMIT from a client outside site 0 (site 0's clients reach it directly). For fogdb it is
every exchange between nodes across sites, background replication (Raft heartbeats, the voters'
upkeep) included; "idle background" estimates that part from a quiet window measured just before
the run. Server CPU is user + system time from /proc/<pid>/stat over the run: all fogdb nodes
together, or mariadbd.`

func (r *report) text() string {
	var b strings.Builder
	b.WriteString("\n" + r.header() + "\n\n")
	h, rows := r.rows()
	b.WriteString(textTable(h, rows))
	b.WriteString("\n")
	h, rows = r.ratios()
	if len(rows) > 0 {
		b.WriteString(textTable(h, rows))
		b.WriteString("\n")
	}
	b.WriteString(notes + "\n")
	return b.String()
}

func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString(r.header() + "\n\n")
	h, rows := r.rows()
	b.WriteString(mdTable(h, rows))
	h, rows = r.ratios()
	if len(rows) > 0 {
		b.WriteString("\n" + mdTable(h, rows))
	}
	b.WriteString("\n" + strings.ReplaceAll(notes, "\n", " ") + "\n")
	return b.String()
}

// chart plots total seconds against site count: one line per system and
// delay.
func (r *report) chart(path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Booting %d VMs: SQL of Nova's boot sequence", r.c.vms)
	p.X.Label.Text = "sites"
	// The systems are one to two orders of magnitude apart: a log scale
	// keeps the local baseline readable next to the WAN setups.
	p.Y.Label.Text = "seconds for all VMs (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())

	type series struct {
		name   string
		system string
		lat    time.Duration
		dashed bool
	}
	var all []series
	for _, d := range r.c.latencies {
		all = append(all, series{fmt.Sprintf("fogdb, %s", d), "fogdb", d, false})
		all = append(all, series{fmt.Sprintf("central MariaDB, %s", d), "central MariaDB", d, true})
	}
	all = append(all, series{"local MariaDB, no delay", "local MariaDB", 0, false})
	palette := []color.Color{
		color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
		color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	}
	ticks := []plot.Tick{}
	for _, n := range r.c.sites {
		ticks = append(ticks, plot.Tick{Value: float64(n), Label: fmt.Sprint(n)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	i := 0
	for _, s := range all {
		var xys plotter.XYs
		for _, n := range r.c.sites {
			if x, ok := r.find(s.system, n, s.lat); ok {
				xys = append(xys, plotter.XY{X: float64(n), Y: x.seconds})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		col := palette[i%len(palette)]
		// One colour per latency pair would hide the system; one per
		// series, with central MariaDB dashed, keeps both readable.
		line.Color, points.Color = col, col
		line.Width = vg.Points(1.5)
		if s.dashed {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		points.Shape = draw.CircleGlyph{}
		p.Add(line, points)
		p.Legend.Add(s.name, line, points)
		i++
	}
	if i == 0 {
		return errors.New("no results to plot")
	}
	lo, hi := slices.Min(r.c.sites), slices.Max(r.c.sites)
	p.X.Min, p.X.Max = float64(lo)-0.5, float64(hi)+0.5
	// Room above the highest point for the legend.
	ymin, ymax := math.Inf(1), 0.0
	for _, x := range r.results {
		ymin, ymax = min(ymin, x.seconds), max(ymax, x.seconds)
	}
	p.Y.Min, p.Y.Max = ymin/2, ymax*math.Pow(ymax/ymin*2, 0.3)
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}
