package wanem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// LinkStatus is a link as the control endpoint reports it.
type LinkStatus struct {
	Name   string    `json:"name"`
	From   string    `json:"from,omitempty"`
	To     string    `json:"to"`
	Listen string    `json:"listen"`
	Target string    `json:"target"`
	Cut    string    `json:"cut,omitempty"`
	Stats  LinkStats `json:"stats"`
}

// Status lists every link with its counters.
func (p *Proxy) Status() []LinkStatus {
	var out []LinkStatus
	for _, l := range p.Links() {
		st := LinkStatus{Name: l.cfg.Name, From: l.cfg.From, To: l.cfg.To, Listen: l.Addr(), Target: l.cfg.Target, Stats: l.Stats()}
		if m := l.CutMode(); m != 0 {
			st.Cut = m.String()
		}
		out = append(out, st)
	}
	return out
}

// Handler is the proxy's HTTP control endpoint:
//
//	GET  /links                                  links, cut state and counters (JSON)
//	POST /cut?a=SITE&b=SITE[&mode=blackhole|reset]
//	POST /cut?link=NAME[&mode=...]
//	POST /heal?a=SITE&b=SITE | /heal?link=NAME | /heal (everything)
//	POST /delay?a=SITE&b=SITE&delay=25ms[&oneway=true]
//	POST /jitter?a=SITE&b=SITE&jitter=5ms
//	POST /bandwidth?a=SITE&b=SITE&bps=1000000
//
// A cut's mode defaults to blackhole. Pair settings apply both ways unless
// oneway (from a to b only).
func (p *Proxy) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /links", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.Status())
	})
	mux.HandleFunc("POST /cut", control(func(r *http.Request) error {
		mode := Blackhole
		if s := r.FormValue("mode"); s != "" {
			m, err := ParseMode(s)
			if err != nil {
				return err
			}
			mode = m
		}
		if name := r.FormValue("link"); name != "" {
			l := p.Link(name)
			if l == nil {
				return fmt.Errorf("%w: %q", ErrUnknownLink, name)
			}
			l.Cut(mode)
			return nil
		}
		a, b, err := sites(r)
		if err != nil {
			return err
		}
		p.Cut(a, b, mode)
		return nil
	}))
	mux.HandleFunc("POST /heal", control(func(r *http.Request) error {
		if name := r.FormValue("link"); name != "" {
			l := p.Link(name)
			if l == nil {
				return fmt.Errorf("%w: %q", ErrUnknownLink, name)
			}
			l.Heal()
			return nil
		}
		if r.FormValue("a") == "" && r.FormValue("b") == "" {
			p.HealAll()
			return nil
		}
		a, b, err := sites(r)
		if err != nil {
			return err
		}
		p.Heal(a, b)
		return nil
	}))
	mux.HandleFunc("POST /delay", control(func(r *http.Request) error {
		a, b, err := sites(r)
		if err != nil {
			return err
		}
		d, err := duration(r, "delay")
		if err != nil {
			return err
		}
		if oneway, _ := strconv.ParseBool(r.FormValue("oneway")); oneway {
			p.SetOneWayDelay(a, b, d)
		} else {
			p.SetDelay(a, b, d)
		}
		return nil
	}))
	mux.HandleFunc("POST /jitter", control(func(r *http.Request) error {
		a, b, err := sites(r)
		if err != nil {
			return err
		}
		j, err := duration(r, "jitter")
		if err != nil {
			return err
		}
		p.SetJitter(a, b, j)
		return nil
	}))
	mux.HandleFunc("POST /bandwidth", control(func(r *http.Request) error {
		a, b, err := sites(r)
		if err != nil {
			return err
		}
		bps, err := strconv.ParseInt(r.FormValue("bps"), 10, 64)
		if err != nil || bps < 0 {
			return fmt.Errorf("%w: bps %q", ErrInvalid, r.FormValue("bps"))
		}
		p.SetBandwidth(a, b, bps)
		return nil
	}))
	return mux
}

func control(f func(*http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(r); err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, ErrUnknownLink) {
				code = http.StatusNotFound
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func sites(r *http.Request) (string, string, error) {
	a, b := r.FormValue("a"), r.FormValue("b")
	if a == "" || b == "" {
		return "", "", fmt.Errorf("%w: name two sites, a and b", ErrInvalid)
	}
	return a, b, nil
}

func duration(r *http.Request, name string) (time.Duration, error) {
	d, err := time.ParseDuration(r.FormValue(name))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: %s %q", ErrInvalid, name, r.FormValue(name))
	}
	return d, nil
}
