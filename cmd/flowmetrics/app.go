package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowmetrics/flowmetrics/config"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/receiver/intake"
	"github.com/flowmetrics/flowmetrics/receiver/snmp"
)

// app is the running exporter: the configuration in force, the core and the
// sockets, and what a reload needs to replace them.
type app struct {
	logger      *slog.Logger
	configFile  string
	listenFlags []string

	mu      sync.Mutex
	stopped bool // stop has run: a reload (POST /-/reload) is refused
	cfg     config.Config
	core    *core.Core
	intake  *intake.Intake
	snmp    *snmp.Poller

	// geoipEvery is the mmdb reload check interval (nanoseconds), read by
	// the maintenance loop.
	geoipEvery  atomic.Int64
	lastRefresh time.Time // maintenance loop only

	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
}

func newApp(logger *slog.Logger, configFile string, listenFlags []string) *app {
	return &app{
		logger: logger, configFile: configFile, listenFlags: listenFlags,
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowmetrics_config_last_reload_successful",
			Help: "Whether the last configuration load or reload succeeded.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowmetrics_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load or reload.",
		}),
	}
}

// load reads the configuration file (or the defaults) and applies the flags.
func (a *app) load() (config.Config, error) {
	cfg := config.Default()
	if a.configFile != "" {
		var err error
		if cfg, err = config.Load(a.configFile); err != nil {
			return cfg, err
		}
	}
	if len(a.listenFlags) > 0 {
		// The rest was validated with the file: check the addresses,
		// named as the user typed them, not as the listen key they replace.
		if err := config.ValidateListen("--flow.listen-address", a.listenFlags); err != nil {
			return cfg, err
		}
		cfg.Listen = a.listenFlags
	}
	return cfg, nil
}

// start loads the configuration and starts the core and the sockets.
func (a *app) start() error {
	cfg, err := a.load()
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	a.cfg = cfg
	a.core = core.New(cfg.Core())
	if err := a.core.RefreshEnrichment(); err != nil {
		a.logger.Error("enrichment database not loaded; retrying every geoip.reload_interval", "err", err)
	}
	a.geoipEvery.Store(int64(cfg.Enrich.GeoIP.ReloadInterval))
	a.intake = intake.New(cfg.Intake(), a.core, a.logger)
	if err := a.intake.Start(); err != nil {
		return err
	}
	a.snmp = snmp.New(cfg.SNMP(), a.core.Interfaces(), exporterAddrs(a.core), a.logger)
	a.snmp.Start()
	a.reloadOK.Set(1)
	a.reloadTime.SetToCurrentTime()
	return nil
}

// reload applies the configuration file again. On any error the running
// configuration stays in force. Families whose definition did not change
// keep their counters; changed socket settings rebind the sockets (new ones
// first, so no datagram is refused in between).
func (a *app) reload() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		// A POST /-/reload during shutdown: binding new sockets now
		// would take datagrams nothing drains, and hold the ports
		// against the instance that replaces this one.
		a.logger.Warn("configuration reload refused: shutting down")
		return errStopping
	}
	cfg, err := a.load()
	if err != nil {
		a.reloadOK.Set(0)
		a.logger.Error("configuration reload failed; keeping the running configuration", "file", a.configFile, "err", err)
		return err
	}
	if cfg.MaxExporters != a.cfg.MaxExporters {
		a.logger.Warn("max_exporters changes take effect only after a restart", "running", a.cfg.MaxExporters, "configured", cfg.MaxExporters)
		cfg.MaxExporters = a.cfg.MaxExporters
	}
	// Bind the new sockets (if their settings changed) before applying
	// anything else: a reload that cannot bind them fails as a whole, with
	// the running families, sampling, allowlist and enrichment untouched.
	// Only when the sockets' settings really changed (a rebind costs new
	// sockets and buffers; the exporters' templates live on their health
	// entries and survive it).
	var replaced *intake.Intake
	oldIn, newIn := a.intake.Config(), cfg.Intake()
	oldIn.AllowedExporters, newIn.AllowedExporters = nil, nil
	if !reflect.DeepEqual(oldIn, newIn) || !slices.Equal(oldIn.Listen, newIn.Listen) {
		in := intake.New(cfg.Intake(), a.core, a.logger)
		if err := in.StartReplacing(a.intake); err != nil {
			err = fmt.Errorf("cannot bind the new sockets: %w", err)
			a.reloadOK.Set(0)
			a.logger.Error("configuration reload failed; keeping the running configuration", "file", a.configFile, "err", err)
			return err
		}
		replaced, a.intake = a.intake, in
	}
	created := a.core.Reconfigure(cfg.Core())
	removed := removedFamilies(a.cfg.Families, cfg.Families)
	if err := a.core.RefreshEnrichment(); err != nil {
		a.logger.Error("enrichment database not loaded; retrying every geoip.reload_interval", "err", err)
	}
	a.geoipEvery.Store(int64(cfg.Enrich.GeoIP.ReloadInterval))
	a.snmp.SetConfig(cfg.SNMP())
	a.intake.SetAllowed(cfg.Intake().AllowedExporters)
	if replaced != nil {
		replaced.Stop()
		if replaced.Config().Limits != a.intake.Config().Limits {
			a.logger.Info("sockets rebound; exporters keep their templates under the new max_templates_per_exporter (a lower one forgets templates no data set has used first)")
		} else {
			a.logger.Info("sockets rebound; exporters keep their templates")
		}
	}
	a.cfg = cfg
	a.reloadOK.Set(1)
	a.reloadTime.SetToCurrentTime()
	// created families (new or changed) start from zero; removed ones'
	// series are gone from the next scrape.
	a.logger.Info("configuration reloaded", "file", a.configFile, "families_created", created, "families_removed", removed)
	return nil
}

// removedFamilies returns the names of the families in old that new no
// longer has.
func removedFamilies(old, new []config.FamilyConfig) []string {
	var out []string
	for _, o := range old {
		if !slices.ContainsFunc(new, func(n config.FamilyConfig) bool { return n.Name == o.Name }) {
			out = append(out, o.Name)
		}
	}
	return out
}

// stop drains and closes the sockets; reloads are refused from then on.
func (a *app) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	a.stopped = true
	if a.intake != nil {
		a.intake.Stop()
	}
	if a.snmp != nil {
		a.snmp.Stop()
	}
}

// exporterAddrs lists the exporters the core tracks, for the SNMP poller.
func exporterAddrs(c *core.Core) snmp.ExporterSource {
	return func() []netip.Addr {
		var out []netip.Addr
		c.Exporters().Each(func(e *health.Exporter) { out = append(out, e.Addr) })
		return out
	}
}

// Stats and Latency let the collector read whichever sockets are current.
func (a *app) Stats() []intake.SocketStats {
	a.mu.Lock()
	in := a.intake
	a.mu.Unlock()
	return in.Stats()
}

// Latency returns the current sockets' processing-time histogram.
func (a *app) Latency() *health.Histogram {
	a.mu.Lock()
	in := a.intake
	a.mu.Unlock()
	return in.Latency()
}

// maintain runs series expiry and admission, and reopens changed enrichment
// databases, until stop is closed.
func (a *app) maintain(stop <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			a.core.Maintain(now)
			if now.Sub(a.lastRefresh) >= time.Duration(a.geoipEvery.Load()) {
				a.lastRefresh = now
				if err := a.core.RefreshEnrichment(); err != nil {
					a.logger.Warn("enrichment database reload failed; the previous version stays in use", "err", err)
				}
			}
		}
	}
}

// reloadHandler serves POST /-/reload (with --web.enable-lifecycle).
func (a *app) reloadHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		http.Error(w, "use POST or PUT to reload the configuration", http.StatusMethodNotAllowed)
		return
	}
	if err := a.reload(); errors.Is(err, errStopping) {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	} else if err != nil {
		http.Error(w, "failed to reload config: "+err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "configuration reloaded")
}

// errInvalidConfig marks a start refused for its configuration, rather
// than for a socket it could not bind.
var errInvalidConfig = errors.New("invalid configuration")

// errStopping refuses a reload once shutdown has begun.
var errStopping = errors.New("shutting down: configuration not reloaded")

var errLifecycleDisabled = errors.New("lifecycle API is not enabled (--web.enable-lifecycle)")
