package core

import (
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/processor/sampling"
)

func sumBytes(f *aggregate.Family) (b uint64) {
	for _, p := range f.Collect(nil) {
		b += p.Bytes
	}
	return b
}

func TestProcess(t *testing.T) {
	ex1 := netip.MustParseAddr("192.0.2.1")
	c := New(Config{
		MaxExporters: 4,
		Families: []aggregate.Spec{
			{Name: "proto", Labels: []aggregate.Label{aggregate.LabelProto}, Limit: 1},
			{Name: "src", Labels: []aggregate.Label{aggregate.LabelExporter, aggregate.LabelSrcAddr}, Limit: 100},
		},
		Sampling: sampling.Config{Overrides: []sampling.Override{{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Rate: 100}}},
	})
	ex := c.Exporters().Get(ex1)
	recs := []flow.Record{
		{Exporter: ex1, Proto: 6, Bytes: 10, Packets: 1, Protocol: flow.IPFIX},
		{Exporter: ex1, Proto: 17, Bytes: 20, Packets: 1, Protocol: flow.IPFIX},
		{Exporter: ex1, Proto: 17, Bytes: 1 << 49, Packets: 1, Protocol: flow.IPFIX}, // x100 is implausible
	}
	c.Process(ex, recs, time.Unix(1700000000, 0))
	if got := sumBytes(c.Totals()); got != 3000 {
		t.Errorf("totals = %d, want 3000 (override x100, implausible record dropped)", got)
	}
	for _, f := range c.Families() {
		if got := sumBytes(f); got != 3000 {
			t.Errorf("family %s sums to %d, want 3000", f.Spec().Name, got)
		}
	}
	if ex.DecodeErrors[health.ReasonImplausible].Load() != 1 || ex.Records[flow.IPFIX].Load() != 2 {
		t.Errorf("implausible = %d, records = %d", ex.DecodeErrors[health.ReasonImplausible].Load(), ex.Records[flow.IPFIX].Load())
	}
	if ex.SamplingRate.Load() != 100 || flow.RateSource(ex.RateSource.Load()) != flow.RateOverride {
		t.Errorf("rate gauge %d from %v", ex.SamplingRate.Load(), flow.RateSource(ex.RateSource.Load()))
	}

	// An exporter with no rate anywhere: counted 1:1 and reported.
	ex2 := c.Exporters().Get(netip.MustParseAddr("198.51.100.1"))
	c.Process(ex2, []flow.Record{{Exporter: ex2.Addr, Bytes: 5, Packets: 1}}, time.Unix(1700000001, 0))
	if ex2.Unresolved.Load() != 1 || sumBytes(c.Totals()) != 3005 {
		t.Errorf("unresolved = %d, totals = %d", ex2.Unresolved.Load(), sumBytes(c.Totals()))
	}
}

// TestProcessCountsRecordsByProtocol: a batch mixing protocols (one
// address exporting two) counts each record under its own protocol, and an
// implausible one under none.
func TestProcessCountsRecordsByProtocol(t *testing.T) {
	ex1 := netip.MustParseAddr("192.0.2.1")
	c := New(Config{MaxExporters: 4, Sampling: sampling.Config{Overrides: []sampling.Override{{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Rate: 100}}}})
	ex := c.Exporters().Get(ex1)
	mixed := []flow.Record{
		{Exporter: ex1, Bytes: 1, Packets: 1, Protocol: flow.NetFlowV9},
		{Exporter: ex1, Bytes: 1, Packets: 1, Protocol: flow.NetFlowV9},
		{Exporter: ex1, Bytes: 1, Packets: 1, Protocol: flow.IPFIX},
		{Exporter: ex1, Bytes: 1 << 49, Packets: 1, Protocol: flow.SFlowV5}, // implausible: not counted
		{Exporter: ex1, Bytes: 1, Packets: 1, Protocol: flow.NetFlowV9},
	}
	c.Process(ex, mixed, time.Unix(1700000000, 0))
	if v9, ipfix, sf := ex.Records[flow.NetFlowV9].Load(), ex.Records[flow.IPFIX].Load(), ex.Records[flow.SFlowV5].Load(); v9 != 3 || ipfix != 1 || sf != 0 {
		t.Errorf("records by protocol after a mixed batch: v9 %d, ipfix %d, sflow %d; want 3, 1, 0", v9, ipfix, sf)
	}
	if got := sumBytes(c.Totals()); got != 400 {
		t.Errorf("totals = %d, want 400", got)
	}
}

func TestValidate(t *testing.T) {
	good := aggregate.Spec{Name: "a", Labels: []aggregate.Label{aggregate.LabelProto}, Limit: 1}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{MaxExporters: 1, Families: []aggregate.Spec{good}}, ""},
		{"reserved", Config{MaxExporters: 1, Families: []aggregate.Spec{{Name: "exporter", Labels: good.Labels, Limit: 1}}}, `families[0].name: "exporter" is used twice or reserved`},
		{"no labels", Config{MaxExporters: 1, Families: []aggregate.Spec{{Name: "b", Limit: 1}}}, "families[0] (b): labels: at least one label is required"},
		{"exporters", Config{}, "max_exporters: must be at least 1, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

// Socket readers call Process concurrently: with busy families skipped and
// come back to, every family must still fold every batch exactly once.
func TestProcessConcurrentReaders(t *testing.T) {
	c := New(Config{MaxExporters: 16, Families: defaultSpecs()})
	const readers, batches = 4, 400
	var wg sync.WaitGroup
	for g := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex := c.Exporters().Get(netip.AddrFrom4([4]byte{192, 0, 2, byte(g + 1)}))
			recs, batch := benchRecords(ex.Addr, uint64(g)), make([]flow.Record, 30)
			for i := range batches {
				copy(batch, recs)
				for j := range batch {
					batch[j].Bytes = uint64(g*1000 + i%7 + 1)
				}
				c.Process(ex, batch, time.Unix(1700000000, 0))
			}
		}()
	}
	wg.Wait()
	var want uint64 // records' bytes x rate 10
	for g := range readers {
		for i := range batches {
			want += 30 * 10 * uint64(g*1000+i%7+1)
		}
	}
	for _, f := range append([]*aggregate.Family{c.Totals()}, c.Families()...) {
		if got := sumBytes(f); got != want {
			t.Errorf("family %s sums to %d bytes, want %d", f.Spec().Name, got, want)
		}
		var flows uint64
		for _, p := range f.Collect(nil) {
			flows += p.Flows
		}
		if flows != readers*batches*30 {
			t.Errorf("family %s counts %d flows, want %d", f.Spec().Name, flows, readers*batches*30)
		}
	}
}

func TestEachOnce(t *testing.T) {
	tests := []struct {
		name string
		busy []int // how many tries each element reports busy
		// waits is how many elements wait must apply.
		waits int
	}{
		{"none busy", []int{0, 0, 0, 0}, 0},
		{"one busy once", []int{0, 1, 0, 0}, 0},
		{"all busy once", []int{1, 1, 1}, 1},
		{"last always busy", []int{0, 0, 0, 99}, 1},
		{"first always busy", []int{99, 0, 0}, 1},
		{"all always busy", []int{99, 99, 99, 99}, 4},
		{"busy for two passes", []int{2, 0, 2, 0, 1}, 0},
		{"all busy twice", []int{2, 2}, 2},
		{"one element busy", []int{5}, 1},
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tries := make([]int, len(tt.busy))
			applied := make([]int, len(tt.busy))
			waits := 0
			todo := make([]int, len(tt.busy))
			for i := range todo {
				todo[i] = i
			}
			eachOnce(todo,
				func(i int) bool {
					tries[i]++
					if tries[i] <= tt.busy[i] {
						return false
					}
					applied[i]++
					return true
				},
				func(i int) { applied[i]++; waits++ })
			for i, n := range applied {
				if n != 1 {
					t.Errorf("element %d applied %d times, want once", i, n)
				}
			}
			if waits != tt.waits {
				t.Errorf("waited %d times, want %d", waits, tt.waits)
			}
		})
	}
}

// The pooled scratch of Process must not keep a family a reload removed
// reachable (its tables, series and sketch would never be freed).
func TestReloadReleasesRemovedFamily(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one P: Process reuses one pooled scratch
	specs := defaultSpecs()
	c := New(Config{MaxExporters: 16, Families: specs})
	ex := c.Exporters().Get(netip.MustParseAddr("192.0.2.1"))
	recs, batch := benchRecords(ex.Addr, 1), make([]flow.Record, 30)
	copy(batch, recs)
	c.Process(ex, batch, time.Now())
	dropped := weak.Make(c.Families()[len(specs)-1])
	c.Reconfigure(Config{MaxExporters: 16, Families: specs[:len(specs)-1]})
	for range 5 {
		copy(batch, recs)
		c.Process(ex, batch, time.Now())
		runtime.GC()
	}
	if dropped.Value() != nil {
		t.Error("a family removed by Reconfigure is still reachable")
	}
}

// TestRealExporterAfterFlood: a flood of one-record source addresses fills
// the per-exporter totals and the overflow series; a real exporter that
// starts sending then is counted under exporter "other" (never lost) until
// it displaces an idle flood entry, an admission window plus the hold
// later (the README's "about 2.5 minutes by default").
func TestRealExporterAfterFlood(t *testing.T) {
	const maxExp = 4
	c := New(Config{MaxExporters: maxExp, Families: []aggregate.Spec{
		{Name: "proto", Labels: []aggregate.Label{aggregate.LabelExporter, aggregate.LabelProto}, Limit: 100},
	}})
	t0 := time.Unix(1700000000, 0)
	c.Maintain(t0) // starts the first admission window
	rec := func(a netip.Addr, bytes uint64) flow.Record {
		return flow.Record{Exporter: a, Proto: 6, Bytes: bytes, Packets: 1, SamplingRate: 1, RateSource: flow.RateHeader, Protocol: flow.NetFlowV5}
	}
	for i := range 40 {
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		c.Process(c.Exporters().Get(a), []flow.Record{rec(a, 10)}, t0)
	}
	real := netip.MustParseAddr("192.0.2.1")
	own := func() (own, other uint64) {
		for _, p := range c.Totals().Collect(nil) {
			switch p.Labels[0] {
			case real.String():
				own += p.Bytes
			case "other":
				other += p.Bytes
			}
		}
		return own, other
	}
	var sent uint64
	send := func(at time.Time) {
		c.Process(c.Exporters().Get(real), []flow.Record{rec(real, 1000), rec(real, 1000)}, at)
		sent += 2000
	}
	step := 5 * time.Second
	opts := aggregate.DefaultOptions
	var admitted time.Duration
	for d := step; d <= opts.Window+opts.Hold+2*step; d += step {
		send(t0.Add(d))
		c.Maintain(t0.Add(d))
		if o, _ := own(); o > 0 && admitted == 0 {
			admitted = d
		}
	}
	if admitted < opts.Window+opts.Hold || admitted > opts.Window+opts.Hold+2*step {
		t.Errorf("the real exporter got its own totals after %v (0s: never), want an admission window plus the hold (%v)", admitted, opts.Window+opts.Hold)
	}
	// Nothing was lost meanwhile: every byte of the real exporter is in the
	// totals, its early traffic under "other"; the flood's 10-byte series
	// are there too but for those displaced and dropped (their final value
	// was exposed while frozen).
	o, other := own()
	dropped := c.Totals().Stats().Dropped
	if total := sumBytes(c.Totals()); dropped == 0 || total != 400-10*dropped+sent || o == 0 || other < 2000 {
		t.Errorf("totals %d (want %d with %d flood series dropped), own %d, other %d", total, 400-10*dropped+sent, dropped, o, other)
	}
}

// TestProcessWhileMaintainReloadCollect: socket readers (some sharing an
// exporter) fold batches while expiry and admission run, reloads keep the
// families with new series options (sketch and tombstone sizes) and
// scrapes collect; every family, under small limits that keep admission
// and replacement busy, still sums to the records. Run with -race.
func TestProcessWhileMaintainReloadCollect(t *testing.T) {
	specs := defaultSpecs()
	for i := range specs {
		specs[i].Limit = 5
	}
	// A long hold: replaced series stay exposed, so the sums stay exact.
	opts := aggregate.Options{TTL: time.Hour, Hold: time.Hour, Window: time.Millisecond, SketchSize: 8}
	c := New(Config{MaxExporters: 3, Families: specs, Options: opts})
	var clock atomic.Int64
	clock.Store(time.Unix(1700000000, 0).UnixNano())
	var want atomic.Uint64
	var readers, others sync.WaitGroup
	var stop atomic.Bool
	for g := range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := range 400 {
				a := netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + (g+i)%5)})
				recs := benchRecords(a, uint64(i))
				var b uint64
				for j := range recs {
					b += recs[j].Bytes * 10 // rate 10
				}
				c.Process(c.Exporters().Get(a), recs, time.Unix(0, clock.Add(1000)))
				want.Add(b)
			}
		}()
	}
	others.Add(3)
	go func() {
		defer others.Done()
		for !stop.Load() {
			c.Maintain(time.Unix(0, clock.Add(int64(time.Millisecond))))
			runtime.Gosched()
		}
	}()
	go func() {
		defer others.Done()
		for i := 0; !stop.Load(); i++ {
			o := opts
			o.SketchSize, o.Tombstones = 4+i%5, 10+i%7
			c.Reconfigure(Config{MaxExporters: 3, Families: specs, Options: o})
			runtime.Gosched()
		}
	}()
	go func() {
		defer others.Done()
		for !stop.Load() {
			for _, f := range append([]*aggregate.Family{c.Totals()}, c.Families()...) {
				f.Collect(nil)
			}
			runtime.Gosched()
		}
	}()
	readers.Wait()
	stop.Store(true)
	others.Wait()
	for _, f := range append([]*aggregate.Family{c.Totals()}, c.Families()...) {
		if got := sumBytes(f); got != want.Load() {
			t.Errorf("family %s sums to %d bytes, want %d (%+v)", f.Spec().Name, got, want.Load(), f.Stats())
		}
	}
}
