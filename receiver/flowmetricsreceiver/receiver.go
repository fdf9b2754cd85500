package flowmetricsreceiver

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/flowmetrics/flowmetrics/exporter/metricset"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/receiver/intake"
	"github.com/flowmetrics/flowmetrics/receiver/snmp"
)

// maintainEvery is how often series expiry and admission run between
// collections.
const maintainEvery = time.Second

// flowReceiver runs the intake and the core, and emits metrics every
// collection interval.
type flowReceiver struct {
	cfg     *Config
	set     receiver.Settings
	next    consumer.Metrics
	obsrecv *receiverhelper.ObsReport
	convert *converter
	core    *core.Core
	intake  *intake.Intake
	snmp    *snmp.Poller
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex // guards state
	state   int        // notStarted, running or stopped
}

// The receiver's lifecycle: Start once, then Shutdown (the Collector builds
// a new receiver to start again).
const (
	notStarted = iota
	running
	stopped
)

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Metrics) (*flowReceiver, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "udp",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &flowReceiver{cfg: cfg, set: set, next: next, obsrecv: obs, convert: newConverter(cfg.AttributeStyle, set.BuildInfo)}, nil
}

// Start binds the sockets and starts the maintenance and collection loops.
// Their context is their own, not derived from ctx, which only bounds
// Start itself.
func (r *flowReceiver) Start(_ context.Context, _ component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != notStarted {
		return errors.New("flowmetrics receiver: Start called twice or after Shutdown")
	}
	logger := slog.New(zapslog.NewHandler(r.set.Logger.Core()))
	// The counters without a start of their own count from here, where
	// the core and the sockets are made: not from newReceiver, which the
	// Collector calls before it starts the exporters and processors.
	r.convert.started = pcommon.NewTimestampFromTime(time.Now())
	fc := r.cfg.flow()
	r.core = core.New(fc.Core())
	if err := r.core.RefreshEnrichment(); err != nil {
		logger.Error("enrichment database not loaded; retrying every geoip.reload_interval", "err", err)
	}
	r.intake = intake.New(fc.Intake(), r.core, logger)
	if err := r.intake.Start(); err != nil {
		return err
	}
	r.snmp = snmp.New(fc.SNMP(), r.core.Interfaces(), func() []netip.Addr {
		var out []netip.Addr
		r.core.Exporters().Each(func(e *health.Exporter) { out = append(out, e.Addr) })
		return out
	}, logger)
	r.snmp.Start()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(2)
	go r.maintain(ctx, logger)
	go r.collect(ctx)
	r.state = running
	return nil
}

// maintain runs series expiry and admission, and reloads the enrichment
// databases, on its own: a next consumer that holds a collection (an
// exporter without a sending queue, retrying) must not stall them, or the
// families keep their idle series and fold new sources into the overflow
// series meanwhile.
func (r *flowReceiver) maintain(ctx context.Context, logger *slog.Logger) {
	defer r.wg.Done()
	t := time.NewTicker(maintainEvery)
	defer t.Stop()
	lastRefresh := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.core.Maintain(now)
			if now.Sub(lastRefresh) >= r.cfg.Enrich.GeoIP.ReloadInterval {
				lastRefresh = now
				if err := r.core.RefreshEnrichment(); err != nil {
					logger.Warn("enrichment database reload failed; the previous version stays in use", "err", err)
				}
			}
		}
	}
}

// collect emits a collection every collection interval. A collection the
// next consumer holds longer than the interval delays the next one (the
// ticker drops the ticks missed): collections are cumulative, none is
// queued.
func (r *flowReceiver) collect(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.CollectionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.emit(ctx)
		}
	}
}

// emit converts the current state and hands it to the next consumer, counted
// by the collector's own receiver telemetry.
func (r *flowReceiver) emit(ctx context.Context) {
	md, points := r.convert.metrics(metricset.Gather(r.core, r.intake), time.Now())
	ctx = r.obsrecv.StartMetricsOp(ctx)
	err := r.next.ConsumeMetrics(ctx, md)
	r.convert.delivered(err)
	r.obsrecv.EndMetricsOp(ctx, "flowmetrics", points, err)
	if err != nil {
		r.set.Logger.Warn("next consumer refused flow metrics", zap.Error(err))
	}
}

// Shutdown drains and closes the sockets, stops the loops and emits one last
// collection so the final interval is not lost.
func (r *flowReceiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.state
	r.state = stopped
	if was != running {
		return nil
	}
	r.intake.Stop() // its Stats are then the sockets' last figures
	r.snmp.Stop()
	r.cancel()
	r.wg.Wait()
	r.emit(ctx)
	return nil
}
