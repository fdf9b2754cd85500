// Command flowmetrics receives NetFlow v5/v9, IPFIX and sFlow v5 exports
// and serves bounded-cardinality, sampling-corrected traffic metrics on
// /metrics for Prometheus.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	webflag "github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/flowmetrics/flowmetrics/exporter/promexport"
)

const program = "flowmetrics"

// DefaultWebAddress is where /metrics is served unless --web.listen-address
// says otherwise.
const DefaultWebAddress = ":9155"

// Exit statuses besides 0 and 1 (any other failure, such as a port
// another process holds, which a restart may cure). They are sysexits.h's,
// which systemd names USAGE and CONFIG, and examples/flowmetrics.service
// lists them in RestartPreventExitStatus: restarting cannot cure them. Go
// itself exits with 2 on a panic, which a restart may.
const (
	exitUsage  = 64 // EX_USAGE: the command line does not parse
	exitConfig = 78 // EX_CONFIG: a start refused for an invalid configuration
)

// maintainEvery is how often series expiry and admission run.
const maintainEvery = time.Second

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	app := kingpin.New(program, "Turns NetFlow v5/v9, IPFIX and sFlow v5 exports into Prometheus metrics.")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	configFile := app.Flag("config.file", "flowmetrics configuration file (YAML). Without it the defaults apply.").Default("").String()
	listen := app.Flag("flow.listen-address", "UDP address to receive flows on; repeatable. Overrides the config file's listen.").Strings()
	metricsPath := app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
	checkConfig := app.Flag("config.check", "Check the configuration and exit.").Bool()
	lifecycle := app.Flag("web.enable-lifecycle", "Enable reloading the configuration with POST /-/reload.").Bool()
	maxRequests := app.Flag("web.max-requests", "Maximum number of parallel scrape requests. Use 0 to disable.").Default("40").Int()
	webConfig := webflag.AddFlags(app, DefaultWebAddress)
	logConfig := &promslog.Config{Writer: stderr}
	promslogflag.AddFlags(app, logConfig)
	app.Version(version.Print(program))
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", program, err)
		return exitUsage
	}
	logger := promslog.New(logConfig)
	// An invalid configuration fails --config.check with 1, like
	// promtool; a start it refuses exits with exitConfig, which the
	// systemd unit does not restart.
	invalid := exitConfig
	if *checkConfig {
		invalid = 1
	}
	if *maxRequests < 0 {
		logger.Error("invalid flag", "err", fmt.Errorf("--web.max-requests: must be 0 (no bound) or more, got %d", *maxRequests))
		return invalid
	}
	if err := validateTelemetryPath(*metricsPath); err != nil {
		logger.Error("invalid flag", "err", err)
		return invalid
	}
	if !*webConfig.WebSystemdSocket {
		if err := validateWebListen(*webConfig.WebListenAddresses); err != nil {
			logger.Error("invalid flag", "err", err)
			return invalid
		}
	}

	a := newApp(logger, *configFile, *listen)
	if f := *webConfig.WebConfigFile; f != "" {
		if err := validateWebConfig(f); err != nil {
			logger.Error("invalid web configuration", "file", f, "err", err)
			return invalid
		}
	}
	if *checkConfig {
		if _, err := a.load(); err != nil {
			logger.Error("invalid configuration", "file", *configFile, "err", err)
			return invalid
		}
		logger.Info("configuration is valid", "file", *configFile)
		return 0
	}
	// Catch the signals before starting: until signal.Notify, a SIGHUP
	// (systemctl reload, docker kill -s HUP) kills the process, and start
	// can take a while (a large networks file, GeoIP databases). A reload
	// that arrives meanwhile waits and is served once started. Reloads and
	// stops have a channel each: with one channel of one slot, a SIGTERM
	// after a SIGHUP still pending (nothing reads during start) was
	// dropped, and the process ran on.
	reloads := make(chan os.Signal, 1)
	signal.Notify(reloads, syscall.SIGHUP)
	defer signal.Stop(reloads)
	stops := make(chan os.Signal, 1)
	signal.Notify(stops, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stops)
	logger.Info("starting "+program, "version", version.Info())
	// A stop during start ends the process at once: start can be held up
	// (a networks file on a slow mount) and has nothing to drain yet. A
	// stop that comes as start ends may be served either way.
	startDone, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case s := <-stops:
			logger.Info("shutting down during start", "signal", s.String())
			os.Exit(0)
		case <-startDone:
		}
	}()
	err := a.start()
	close(startDone)
	<-watched
	if err != nil {
		// Name the file, as --config.check and a failed reload do: a
		// refused value names its key but not where it is, and under
		// systemd or Docker this line is all the user sees.
		if *configFile != "" {
			logger.Error("cannot start", "file", *configFile, "err", err)
		} else {
			logger.Error("cannot start", "err", err)
		}
		if errors.Is(err, errInvalidConfig) {
			return exitConfig
		}
		return 1 // a socket another holds: a restart may succeed
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		promexport.New(a.core, a),
		a.reloadOK, a.reloadTime,
		versioncollector.NewCollector(program),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	stopMaintain := make(chan struct{})
	maintained := make(chan struct{})
	go func() {
		defer close(maintained)
		a.maintain(stopMaintain, maintainEvery)
	}()

	metrics := promexport.NewHandler(reg, a.core, promexport.HandlerOpts{
		ErrorLog:            func(err error) { logger.Error("gathering metrics", "err", err) },
		MaxRequestsInFlight: *maxRequests,
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy") })
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Ready") })
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if !*lifecycle {
			http.Error(w, errLifecycleDisabled.Error(), http.StatusForbidden)
			return
		}
		a.reloadHandler(w, r)
	})
	if *metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        program,
			Description: "NetFlow v5/v9, IPFIX and sFlow v5 to Prometheus metrics",
			Version:     version.Info(),
			// No /debug/pprof handlers are served: do not link to them.
			Profiling: "false",
			Links: []web.LandingLinks{
				{Address: *metricsPath, Text: "Metrics"},
				{Address: "/-/healthy", Text: "Health"},
			},
		})
		if err != nil {
			logger.Error("landing page", "err", err)
			return 1
		}
		mux.Handle("/", landing)
	}
	srv := &http.Server{Handler: withMetrics(*metricsPath, metrics, mux), ReadHeaderTimeout: 10 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- web.ListenAndServe(srv, webConfig, logger) }()

	code := 0
loop:
	for {
		// A stop pending with a reload is served first: no reload before
		// shutting down.
		select {
		case s := <-stops:
			logger.Info("shutting down", "signal", s.String())
			break loop
		default:
		}
		select {
		case <-reloads:
			_ = a.reload() // logged; the running configuration stays on error
		case s := <-stops:
			logger.Info("shutting down", "signal", s.String())
			break loop
		case err := <-srvErr:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("web server failed", "err", err)
				code = 1
			}
			break loop
		}
	}
	a.stop() // drains queued datagrams first
	close(stopMaintain)
	<-maintained
	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	_ = srv.Shutdown(shutdownCtx)
	logger.Info("stopped")
	return code
}
