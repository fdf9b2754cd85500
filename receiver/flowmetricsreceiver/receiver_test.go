package flowmetricsreceiver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/flowmetrics/flowmetrics/config"
)

// v5 builds a NetFlow v5 datagram of n records of 1000 bytes and 2 packets
// from 10.0.0.<i+1> to 10.0.1.1:443/tcp, header sampling interval rate.
func v5(seq uint32, n int, rate uint16) []byte {
	b := make([]byte, 24+48*n)
	binary.BigEndian.PutUint16(b, 5)
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	binary.BigEndian.PutUint32(b[16:], seq)
	binary.BigEndian.PutUint16(b[22:], rate)
	for i := 0; i < n; i++ {
		r := b[24+48*i:]
		copy(r, []byte{10, 0, 0, byte(i + 1), 10, 0, 1, 1})
		binary.BigEndian.PutUint32(r[16:], 2)
		binary.BigEndian.PutUint32(r[20:], 1000)
		binary.BigEndian.PutUint16(r[32:], 40000)
		binary.BigEndian.PutUint16(r[34:], 443)
		r[38] = 6
	}
	return b
}

func freeUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

// startReceiver creates a receiver of cfg with set, sending to next, and
// starts it; the test fails if either step does.
func startReceiver(t *testing.T, set receiver.Settings, cfg *Config, next consumer.Metrics) receiver.Metrics {
	t.Helper()
	r, err := NewFactory().CreateMetrics(context.Background(), set, cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	return r
}

func findMetric(md pmetric.Metrics, name string) (pmetric.Metric, bool) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if ms.At(k).Name() == name {
					return ms.At(k), true
				}
			}
		}
	}
	return pmetric.Metric{}, false
}

func sumOf(m pmetric.Metric) (total float64) {
	dps := m.Sum().DataPoints()
	for i := 0; i < dps.Len(); i++ {
		total += dps.At(i).DoubleValue()
	}
	return total
}

func TestLifecycle(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Listen = []string{freeUDP(t)}
	r := startReceiver(t, receivertest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err == nil {
		t.Error("a second Start succeeded")
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The Collector builds a new receiver to start again: this one refuses
	// (it would leave sockets and goroutines no Shutdown stops).
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err == nil {
		t.Error("Start after Shutdown succeeded")
	}
	// The port is free again.
	pc, err := net.ListenPacket("udp", cfg.Listen[0])
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	pc.Close()
	// Shutdown without Start, and twice, is fine.
	r2, _ := f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
	if err := r2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestConsumerErrorIsLogged: when the next consumer refuses a collection,
// the warning says why.
func TestConsumerErrorIsLogged(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Listen = []string{freeUDP(t)}
	cfg.CollectionInterval = 100 * time.Millisecond
	set := receivertest.NewNopSettings(f.Type())
	logs, observed := observer.New(zap.WarnLevel)
	set.Logger = zap.New(logs)
	r := startReceiver(t, set, cfg, consumertest.NewErr(errors.New("sending queue is full")))
	defer r.Shutdown(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for observed.FilterMessage("next consumer refused flow metrics").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no warning after the consumer refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e := observed.FilterMessage("next consumer refused flow metrics").All()[0]
	if got := e.ContextMap()["error"]; got != "sending queue is full" {
		t.Errorf("warning's error = %v, want the consumer's", got)
	}
}

// TestStartFailsOnBusyPort: a port held by a plain socket, or by another
// receiver (whose SO_REUSEPORT sockets the kernel would let this one join,
// splitting the exporters between the two), fails Start.
func TestStartFailsOnBusyPort(t *testing.T) {
	f := NewFactory()
	newReceiver := func(listen string) receiver.Metrics {
		cfg := f.CreateDefaultConfig().(*Config)
		cfg.Listen = []string{listen}
		r, err := f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	first := newReceiver(freeUDP(t))
	if err := first.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Shutdown(context.Background()) }()
	for what, listen := range map[string]string{"plain socket": pc.LocalAddr().String(), "other receiver": first.(*flowReceiver).intake.Addrs()[0].String()} {
		r := newReceiver(listen)
		if err := r.Start(context.Background(), componenttest.NewNopHost()); err == nil {
			_ = r.Shutdown(context.Background())
			t.Errorf("Start succeeded on a port held by a %s", what)
		}
	}
}

// TestReceivesOverUDP sends NetFlow v5 over a real socket and checks the
// emitted sums (sampling-corrected), their attributes in both styles, the
// start timestamps, the final emission on Shutdown and the collector's own
// accepted-points telemetry.
func TestReceivesOverUDP(t *testing.T) {
	for _, style := range []string{AttributesSemconv, AttributesPrometheus} {
		t.Run(style, func(t *testing.T) {
			tel := componenttest.NewTelemetry()
			defer func() { _ = tel.Shutdown(context.Background()) }()
			f := NewFactory()
			cfg := f.CreateDefaultConfig().(*Config)
			cfg.Listen = []string{freeUDP(t)}
			cfg.CollectionInterval = time.Hour // only Shutdown emits
			cfg.AttributeStyle = style
			set := receivertest.NewNopSettings(f.Type())
			set.TelemetrySettings = tel.NewTelemetrySettings()
			set.ID = component.NewIDWithName(f.Type(), style)
			sink := new(consumertest.MetricsSink)
			r := startReceiver(t, set, cfg, sink)
			conn, err := net.Dial("udp", cfg.Listen[0])
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 10; i++ {
				if _, err := conn.Write(v5(uint32(3*i), 3, 0x4000|100)); err != nil {
					t.Fatal(err)
				}
			}
			conn.Close()
			time.Sleep(200 * time.Millisecond) // let the socket goroutines read
			if err := r.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			all := sink.AllMetrics()
			if len(all) != 1 {
				t.Fatalf("%d emissions, want 1 (the final one)", len(all))
			}
			md := all[0]
			m, ok := findMetric(md, "flow.exporter.bytes")
			if !ok {
				t.Fatal("no flow.exporter.bytes")
			}
			if m.Unit() != "By" || !m.Sum().IsMonotonic() || m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
				t.Errorf("flow.exporter.bytes: unit %q monotonic %v temporality %v", m.Unit(), m.Sum().IsMonotonic(), m.Sum().AggregationTemporality())
			}
			if got := sumOf(m); got != 30*1000*100 {
				t.Errorf("bytes = %v, want %d", got, 30*1000*100)
			}
			pk, _ := findMetric(md, "flow.protocol.packets")
			if got := sumOf(pk); got != 30*2*100 {
				t.Errorf("protocol packets = %v, want %d", got, 30*2*100)
			}
			dp := m.Sum().DataPoints().At(0)
			if dp.StartTimestamp() == 0 || dp.StartTimestamp() >= dp.Timestamp() {
				t.Errorf("start %v, time %v", dp.StartTimestamp(), dp.Timestamp())
			}
			src, _ := findMetric(md, "flow.src_host.bytes")
			attrs := src.Sum().DataPoints().At(0).Attributes()
			wantAttr := map[string]string{AttributesSemconv: "source.address", AttributesPrometheus: "src_addr"}[style]
			if v, ok := attrs.Get(wantAttr); !ok || v.Str() == "" {
				t.Errorf("src_host attributes %v lack %s", attrs.AsRaw(), wantAttr)
			}
			app, _ := findMetric(md, "flow.application.bytes")
			port, ok := app.Sum().DataPoints().At(0).Attributes().Get(map[string]string{AttributesSemconv: "server.port", AttributesPrometheus: "port"}[style])
			if !ok || (style == AttributesSemconv && (port.Type() != pcommon.ValueTypeInt || port.Int() != 443)) || (style == AttributesPrometheus && port.Str() != "443") {
				t.Errorf("application port attribute = %v", port.AsRaw())
			}
			if _, ok := findMetric(md, "flowmetrics.datagrams"); !ok {
				t.Error("no health metric flowmetrics.datagrams")
			}
			// The final emission comes after the sockets closed, yet
			// still has their figures.
			if buf, ok := findMetric(md, "flowmetrics.socket_receive_buffer"); !ok || buf.Gauge().DataPoints().Len() == 0 || buf.Gauge().DataPoints().At(0).DoubleValue() <= 0 {
				t.Error("the final emission lacks the socket's receive buffer")
			}
			got, err := tel.GetMetric("otelcol_receiver_accepted_metric_points")
			if err != nil {
				t.Fatal(err)
			}
			var accepted int64
			for _, p := range got.Data.(metricdata.Sum[int64]).DataPoints {
				accepted += p.Value
			}
			if accepted != int64(md.DataPointCount()) {
				t.Errorf("accepted points = %d, emitted %d", accepted, md.DataPointCount())
			}
		})
	}
}

// TestOverflowSeriesIsMarked checks that in semconv style the overflow series
// carries otel.metric.overflow=true and only the exporter attribute.
func TestOverflowSeriesIsMarked(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Listen = []string{freeUDP(t)}
	cfg.CollectionInterval = time.Hour
	cfg.Families = []config.FamilyConfig{{Name: "src", Labels: []string{"exporter", "src_addr"}, Limit: 1}}
	sink := new(consumertest.MetricsSink)
	r := startReceiver(t, receivertest.NewNopSettings(f.Type()), cfg, sink)
	conn, _ := net.Dial("udp", cfg.Listen[0])
	_, _ = conn.Write(v5(0, 3, 0))
	conn.Close()
	time.Sleep(200 * time.Millisecond)
	_ = r.Shutdown(context.Background())
	m, ok := findMetric(sink.AllMetrics()[0], "flow.src.bytes")
	if !ok {
		t.Fatal("no flow.src.bytes")
	}
	var overflow float64
	dps := m.Sum().DataPoints()
	for i := 0; i < dps.Len(); i++ {
		a := dps.At(i).Attributes()
		if v, ok := a.Get(overflowAttribute); ok && v.Bool() {
			overflow += dps.At(i).DoubleValue()
			if _, has := a.Get("source.address"); has || a.Len() != 2 {
				t.Errorf("overflow attributes %v", a.AsRaw())
			}
		}
	}
	if overflow != 2000 {
		t.Errorf("overflow series = %v bytes, want 2000", overflow)
	}
}

// fastExpiryConfig is the default configuration on a free UDP port at
// 127.0.0.1, collected every 100 ms, whose series go idle after a second
// and are dropped a second later.
func fastExpiryConfig(t *testing.T) (receiver.Factory, *Config) {
	t.Helper()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Listen = []string{freeUDP(t)}
	cfg.CollectionInterval = 100 * time.Millisecond
	cfg.Series.IdleTimeout = time.Second
	cfg.Series.FrozenHold = time.Second
	return f, cfg
}

// TestRefusedEndsAreSentAgainOverUDP: a consumer that refuses the
// collection carrying some series' ends (as a memory_limiter does) gets the
// same ends again with the next collection, and not after it accepted
// them. Real sockets and the receiver's own clock: the series go idle after
// idle_timeout and are dropped after frozen_hold.
func TestRefusedEndsAreSentAgainOverUDP(t *testing.T) {
	f, cfg := fastExpiryConfig(t)
	var mu sync.Mutex
	var calls [][]string // the ends each call carried, sorted; nil for none
	var refusedAt = -1
	next, err := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
		mu.Lock()
		defer mu.Unlock()
		var ends []string
		for _, e := range endPoints(t, md) {
			ends = append(ends, fmt.Sprintf("%s %v", e.metric, e.attrs))
		}
		slices.Sort(ends)
		calls = append(calls, ends)
		if len(ends) > 0 && refusedAt < 0 {
			refusedAt = len(calls) - 1
			return errors.New("data refused due to high memory usage")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r := startReceiver(t, receivertest.NewNopSettings(f.Type()), cfg, next)
	defer r.Shutdown(context.Background())
	conn, err := net.Dial("udp", cfg.Listen[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(v5(0, 3, 0x4000|100)); err != nil {
		t.Fatal(err)
	}
	// Idle 1 s, frozen 1 s, maintained every second: dropped within ~4 s.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		done := refusedAt >= 0 && len(calls) >= refusedAt+3
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no collection carried ends within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	refused, again, after := calls[refusedAt], calls[refusedAt+1], calls[refusedAt+2]
	// The flows' ten series all end, three metrics each: one in each
	// default family and the totals, three (sources) in src_host.
	if len(refused) != 30 || !slices.ContainsFunc(refused, func(s string) bool { return strings.HasPrefix(s, "flow.exporter.bytes ") }) {
		t.Fatalf("the refused collection's ends: %v", refused)
	}
	if !slices.Equal(again, refused) {
		t.Errorf("the next collection's ends:\n%v\nwant those refused:\n%v", again, refused)
	}
	if len(after) != 0 {
		t.Errorf("ends after they were accepted: %v", after)
	}
}

// TestCountersStartAtStart: the counters without a start of their own
// (family and socket counters, the processing histogram) begin counting
// when Start builds the pipeline, so their start timestamp is Start's time,
// not the time the Collector created the receiver (it creates every
// component, then starts the exporters and processors, then the receivers).
func TestCountersStartAtStart(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Listen = []string{freeUDP(t)}
	cfg.CollectionInterval = time.Hour // only Shutdown emits
	sink := new(consumertest.MetricsSink)
	r, err := f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the rest of the pipeline starting
	beforeStart := pcommon.NewTimestampFromTime(time.Now())
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	md := sink.AllMetrics()[0]
	for _, name := range []string{"flowmetrics.family_other_records", "flowmetrics.socket_drops"} {
		m, ok := findMetric(md, name)
		if !ok || m.Sum().DataPoints().Len() == 0 {
			t.Fatalf("no %s", name)
		}
		if st := m.Sum().DataPoints().At(0).StartTimestamp(); st < beforeStart {
			t.Errorf("%s starts %v, before Start (%v)", name, st.AsTime(), beforeStart.AsTime())
		}
	}
	h, ok := findMetric(md, "flowmetrics.processing_duration")
	if !ok || h.Histogram().DataPoints().Len() == 0 {
		t.Fatal("no flowmetrics.processing_duration")
	}
	if st := h.Histogram().DataPoints().At(0).StartTimestamp(); st < beforeStart {
		t.Errorf("processing_duration starts %v, before Start (%v)", st.AsTime(), beforeStart.AsTime())
	}
}

// TestShutdownDoesNotWaitForSNMP: an SNMP poll in flight to an agent that
// does not answer does not hold Shutdown (and so a Collector reload, whose
// new receiver cannot start before) for the poll's timeout.
func TestShutdownDoesNotWaitForSNMP(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Listen = []string{freeUDP(t)}
	cfg.Enrich.SNMP.Exporters = []string{"127.0.0.0/8"}
	cfg.Enrich.SNMP.Port = silent.LocalAddr().(*net.UDPAddr).Port
	cfg.Enrich.SNMP.Timeout = 10 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := startReceiver(t, receivertest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
	conn, err := net.Dial("udp", cfg.Listen[0])
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write(v5(0, 1, 0)) // an exporter to poll: 127.0.0.1
	conn.Close()
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := silent.ReadFrom(make([]byte, 1500)); err != nil {
		t.Fatalf("no SNMP request: %v", err)
	}
	start := time.Now()
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v with an SNMP request in flight; want well under its 10s timeout", d.Round(time.Millisecond))
	}
}

// TestSlowConsumerDoesNotStallExpiry: while the next consumer holds a
// collection (an exporter without a sending queue retrying, say), series
// still expire on time, so that a new source gets the slot of one that went
// idle instead of being folded into the overflow series for good.
func TestSlowConsumerDoesNotStallExpiry(t *testing.T) {
	f, cfg := fastExpiryConfig(t)
	cfg.Families = []config.FamilyConfig{{Name: "src", Labels: []string{"exporter", "src_addr"}, Limit: 1}}
	release := make(chan struct{})
	var once, released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	var mu sync.Mutex
	var last pmetric.Metrics
	next, err := consumer.NewMetrics(func(ctx context.Context, md pmetric.Metrics) error {
		once.Do(func() { <-release }) // the first collection takes long
		mu.Lock()
		defer mu.Unlock()
		last = md
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r := startReceiver(t, receivertest.NewNopSettings(f.Type()), cfg, next)
	defer func() { _ = r.Shutdown(context.Background()) }()
	// Run before that Shutdown: a test that fails while the collection is
	// held must not leave Shutdown waiting for it.
	defer free()
	conn, err := net.Dial("udp", cfg.Listen[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(v5(0, 1, 0)); err != nil { // from 10.0.0.1
		t.Fatal(err)
	}
	// Idle after 1 s, dropped 1 s after it froze, maintained every second.
	time.Sleep(4500 * time.Millisecond)
	b := v5(1, 1, 0)
	b[24+3] = 2 // from 10.0.0.2
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	free()
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	m, ok := findMetric(last, "flow.src.bytes")
	if !ok {
		t.Fatal("no flow.src.bytes")
	}
	got := map[string]float64{}
	dps := m.Sum().DataPoints()
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		if dp.Flags().NoRecordedValue() {
			continue
		}
		key := "other"
		if v, ok := dp.Attributes().Get("source.address"); ok {
			key = v.Str()
		}
		got[key] += dp.DoubleValue()
	}
	if got["10.0.0.2"] != 1000 || got["other"] != 0 {
		t.Errorf("bytes by source %v, want 1000 for 10.0.0.2 and none in other", got)
	}
}
