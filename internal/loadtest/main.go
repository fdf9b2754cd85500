// Command loadtest measures a running flowmetrics binary under generated
// load: for each protocol and offered rate it sends a fixed number of records
// from flowgen over 127.0.0.1 and reports the records the exporter counted,
// the kernel's socket drops, the CPU seconds the exporter spent per million
// records and its peak RSS, then per protocol the highest rate at which
// nothing was lost (records sent minus records counted, and kernel socket
// drops, both zero) and, if steps lost records, the most one processed.
// With --rounds N every protocol's steps run N times, round after round,
// and the summary adds the median and range of the steps that lost
// records at the highest rate offered: on a shared machine the spread
// says more than one run. Every step is bounded
// in records, the whole run by --timeout; Ctrl-C or SIGTERM ends it the
// same way, stopping the collector under test and removing its files.
//
//	go run ./internal/loadtest --binary bin/flowmetrics
//	go run ./internal/loadtest --binary bin/flowmetrics --gomaxprocs 1 --sockets 1
//	go run ./internal/loadtest --binary bin/flowmetrics --gomaxprocs 1 --sockets 1 --rates 0 --records 3000000 --rounds 10
//	go run ./internal/loadtest --binary bin/flowmetrics --compare --goflow2 $(go env GOPATH)/bin/goflow2
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/flowgen"
	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

func main() {
	binary := flag.String("binary", "bin/flowmetrics", "flowmetrics binary to measure")
	protos := flag.String("protocols", "v5,v9,ipfix,sflow", "protocols to test")
	rates := flag.String("rates", "200000,400000,0", "offered records/s per step; 0 = as fast as the sender can")
	records := flag.Int("records", 1_000_000, "records per step")
	sockets := flag.Int("sockets", 0, "flowmetrics sockets per address (0: one per CPU)")
	procs := flag.Int("gomaxprocs", 0, "GOMAXPROCS of the flowmetrics process (0: the Go default, one per CPU)")
	timeout := flag.Duration("timeout", 3*time.Minute, "upper bound on the whole run")
	exporters := flag.Int("exporters", 4, "simulated exporters")
	compare := flag.Bool("compare", false, "instead, run the same stream through flowmetrics, goflow2 (-goflow2) and nfcapd and compare")
	goflow2 := flag.String("goflow2", "", "goflow2 v2.2.6 binary for --compare (go install github.com/netsampler/goflow2/v2/cmd/goflow2@v2.2.6)")
	rounds := flag.Int("rounds", 1, "times to run every protocol's steps, one round after the other (on a shared machine, several rounds give the spread; --timeout is per round unless set)")
	flag.Parse()
	if *rounds < 1 {
		fmt.Fprintln(os.Stderr, "loadtest: --rounds must be at least 1")
		os.Exit(2)
	}
	if *compare && *rounds > 1 {
		// Not silently one round: the comparison runs its own set.
		fmt.Fprintln(os.Stderr, "loadtest: --rounds does not apply to --compare")
		os.Exit(2)
	}
	timeoutSet := false
	flag.Visit(func(f *flag.Flag) { timeoutSet = timeoutSet || f.Name == "timeout" })
	if !timeoutSet {
		*timeout *= time.Duration(*rounds)
	}
	rateList, err := parseRates(*rates)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest: --rates:", err)
		os.Exit(2)
	}
	if *records < 1 {
		fmt.Fprintln(os.Stderr, "loadtest: --records must be at least 1")
		os.Exit(2)
	}
	if *exporters < 1 {
		fmt.Fprintln(os.Stderr, "loadtest: --exporters must be at least 1")
		os.Exit(2)
	}
	// Checked now, not when a protocol's turn comes: a typo would
	// otherwise end the run after the steps before it.
	protoList, err := parseProtocols(*protos)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest: --protocols:", err)
		os.Exit(2)
	}
	// A signal ends the run like --timeout does: the step under way stops
	// sending, stops its collector and removes its directory. Without this,
	// SIGTERM (timeout(1), a CI job's cancel) left the collector running.
	signalled, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills as usual (should the
	// collector under test not stop).
	go func() { <-signalled.Done(); stop() }()
	ctx, cancel := context.WithTimeoutCause(signalled, *timeout, errTimeout)
	defer cancel()
	if *compare {
		if err := compareCollectors(ctx, *binary, *goflow2, protoList, rateList, *records, *exporters); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		return
	}
	fmt.Printf("%-6s %10s %12s %10s %10s %8s %8s %12s %6s %10s\n", "proto", "offered/s", "processed/s", "sent", "counted", "lost", "drops", "cpu_s/Mrec", "cpu%", "peak_rss")
	// Round by round rather than protocol by protocol: on a shared
	// machine every protocol then meets the same busy and quiet spells.
	steps := make(map[string][]stepResult)
	for round := range *rounds {
		for _, p := range protoList {
			for _, rate := range rateList {
				if ctx.Err() != nil {
					fmt.Fprintln(os.Stderr, "loadtest:", stopped(ctx))
					os.Exit(1)
				}
				res, err := step(ctx, *binary, flowgen.Protocol(p), rate, *records, *sockets, *procs, *exporters)
				if err != nil {
					fmt.Fprintln(os.Stderr, "loadtest:", err)
					os.Exit(1)
				}
				steps[p] = append(steps[p], res)
			}
			if round == *rounds-1 {
				for _, line := range summary(p, steps[p]) {
					fmt.Println(line)
				}
			}
		}
	}
}

// summary sums up a protocol's steps: the highest rate processed without
// loss and, if a step lost records, the most the collector processed in
// one, with its CPU: near 100 % per GOMAXPROCS that is its capacity.
func summary(p string, steps []stepResult) []string {
	var best float64
	var lossy *stepResult
	for i, r := range steps {
		switch {
		case r.lost == 0 && r.drops == 0:
			best = max(best, r.rate)
		case lossy == nil || r.rate > lossy.rate:
			lossy = &steps[i]
		}
	}
	out := []string{fmt.Sprintf("%-6s zero-loss: %.0f records/s (highest processed rate of a step that lost nothing)", p, best)}
	if lossy == nil {
		return out
	}
	out = append(out, fmt.Sprintf("%-6s saturated: %.0f records/s processed at %.0f %% CPU in a step that lost records (the collector's capacity if its CPU was near 100 %% per GOMAXPROCS, else the sender's or the machine's limit)",
		p, lossy.rate, 100*lossy.busy))
	// Several lossy steps at the highest rate offered (--rounds): their
	// spread, which on a shared machine says more than the best of them.
	// Steps offered other rates are left out, so the spread is of one
	// load, not a mix.
	top := lossy.offered
	for _, r := range steps {
		if (r.lost != 0 || r.drops != 0) && higherRate(r.offered, top) {
			top = r.offered
		}
	}
	var rates, perRec []float64
	for _, r := range steps {
		if (r.lost != 0 || r.drops != 0) && r.offered == top && r.counted > 0 {
			rates = append(rates, r.rate)
			perRec = append(perRec, 1e6*r.cpu/r.counted)
		}
	}
	if len(rates) >= 2 {
		lo, med, hi := spread(rates)
		clo, cmed, chi := spread(perRec)
		out = append(out, fmt.Sprintf("%-6s saturated in %d steps offered %s: median %.0f records/s (%.0f–%.0f), %.2f CPU µs per record (%.2f–%.2f)",
			p, len(rates), offeredName(top), med, lo, hi, cmed, clo, chi))
	}
	return out
}

// higherRate reports whether offered rate a is higher than b, 0 (as fast
// as the sender can) being the highest.
func higherRate(a, b float64) bool {
	return b != 0 && (a == 0 || a > b)
}

// offeredName is how the table names an offered rate: "max" for 0.
func offeredName(rate float64) string {
	if rate == 0 {
		return "max"
	}
	return fmt.Sprintf("%.0f", rate)
}

// spread returns the least, the median and the greatest of xs (not empty),
// which it sorts.
func spread(xs []float64) (lo, med, hi float64) {
	slices.Sort(xs)
	n := len(xs)
	med = xs[n/2]
	if n%2 == 0 {
		med = (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[0], med, xs[n-1]
}

// errTimeout is the cause of the run's context ending at --timeout.
var errTimeout = errors.New("--timeout reached")

// stopped says why the run's context ended: --timeout or a signal.
func stopped(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return errors.New("interrupted")
}

// parseRates reads --rates: offered records/s, 0 for as fast as the
// sender can.
func parseRates(s string) ([]float64, error) {
	var rates []float64
	for _, r := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil {
			return nil, err
		}
		if v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("%q: a rate is records per second, or 0 for as fast as the sender can", r)
		}
		rates = append(rates, v)
	}
	return rates, nil
}

// parseProtocols reads --protocols: flowgen's protocol names, separated
// by commas.
func parseProtocols(s string) ([]string, error) {
	var ps []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		switch flowgen.Protocol(p) {
		case flowgen.V5, flowgen.V9, flowgen.IPFIX, flowgen.SFlow:
			ps = append(ps, p)
		default:
			return nil, fmt.Errorf("%q is not one of v5, v9, ipfix, sflow", p)
		}
	}
	return ps, nil
}

// stepResult is what one step measured.
type stepResult struct {
	rate, lost, drops float64
	offered           float64 // records/s offered (--rates), 0 for as fast as the sender can
	counted           float64 // records the collector counted
	sent              float64 // records/s the sender achieved
	cpu               float64 // the collector's CPU seconds
	// busy is those seconds per second of the step (1 = one whole core):
	// near GOMAXPROCS with records lost, the collector was the limit and
	// the processed rate is what it can do; well below, the sender was.
	busy  float64
	rssKB int64 // its peak RSS, 0 if unknown
}

func freePort(network string) string {
	if network == "udp" {
		pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
		defer pc.Close()
		return pc.LocalAddr().String()
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	return l.Addr().String()
}

// userHZ is the unit of /proc/PID/stat's CPU times (USER_HZ).
const userHZ = 100

// procs is a collector's process and its descendants: --binary may be a
// script that starts the collector without exec (taskset, nice), and the
// collector is then the script's child.
type procs []int

// procTree returns pid and its descendants, as /proc lists them now.
func procTree(pid int) procs {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(p); len(f) > 1 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				children[pp] = append(children[pp], p)
			}
		}
	}
	tree := procs{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// statFields returns the fields of /proc/PID/stat after the command name,
// starting with the state (field 3), or nil.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return nil
	}
	return strings.Fields(string(b[i+2:]))
}

// cpuTicks returns the processes' user+system CPU time in clock ticks.
func (ps procs) cpuTicks() int64 {
	var sum int64
	for _, pid := range ps {
		if f := statFields(pid); len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			sum += ut + st
		}
	}
	return sum
}

// peakRSS returns the largest peak RSS (VmHWM) of the processes in kB (the
// collector's, not a wrapper script's), 0 if unknown.
func (ps procs) peakRSS() int64 {
	var most int64
	for _, pid := range ps {
		most = max(most, peakRSS(pid))
	}
	return most
}

// stopBound is how long stopCollector waits for an interrupted collector
// before it kills it.
const stopBound = 10 * time.Second

// stopCollector interrupts a collector and the processes it started (a
// wrapper script's shell passes no signal on to its child) and waits for
// it, killing them all if it has not ended within stopBound.
func stopCollector(cmd *exec.Cmd) {
	ps := procTree(cmd.Process.Pid)
	for i := len(ps) - 1; i >= 0; i-- {
		_ = syscall.Kill(ps[i], syscall.SIGINT)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopBound):
		for _, pid := range ps {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		<-done
	}
}

// drainBound is how long waitIdle waits for a collector to go idle.
const drainBound = 30 * time.Second

// waitIdle waits until the processes' CPU time stops growing (at most one
// clock tick over two polls in a row) and returns their CPU time then, in
// ticks, and when it last grew. The wait is bounded by drainBound, so a
// step is never cut short silently.
func waitIdle(ps procs, poll time.Duration) (int64, time.Time, error) {
	cpu, done := ps.cpuTicks(), time.Now()
	end := done.Add(drainBound)
	for idle := 0; idle < 2; {
		if time.Now().After(end) {
			return 0, time.Time{}, fmt.Errorf("still busy %v after the last datagram", drainBound)
		}
		time.Sleep(poll)
		if c := ps.cpuTicks(); c-cpu > 1 {
			cpu, done, idle = c, time.Now(), 0
		} else {
			idle++
		}
	}
	return cpu, done, nil
}

// peakRSS returns a process's peak RSS (VmHWM) in kB, 0 if unknown.
func peakRSS(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" && f[2] == "kB" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb
		}
	}
	return 0
}

// formatRSS prints a peak RSS as /proc gives it, "?" when unknown.
func formatRSS(kb int64) string {
	if kb <= 0 {
		return "?"
	}
	return fmt.Sprintf("%d kB", kb)
}

func step(ctx context.Context, binary string, p flowgen.Protocol, rate float64, records, sockets, procs, exporters int) (stepResult, error) {
	flows, web := freePort("udp"), freePort("tcp")
	dir, err := os.MkdirTemp("", "loadtest")
	if err != nil {
		return stepResult{}, err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "flowmetrics.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("sockets: %d\nreceive_buffer_bytes: 33554432\n", sockets)), 0o600); err != nil {
		return stepResult{}, err
	}
	cmd := exec.Command(binary, "--config.file="+cfg, "--flow.listen-address="+flows, "--web.listen-address="+web, "--log.level=warn")
	cmd.Stderr = os.Stderr
	if procs > 0 {
		cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", procs))
	}
	if err := cmd.Start(); err != nil {
		return stepResult{}, err
	}
	defer stopCollector(cmd)
	url := "http://" + web + "/metrics"
	for i := 0; ; i++ {
		if _, err := testkit.Scrape(url); err == nil {
			break
		} else if i > 100 {
			return stepResult{}, fmt.Errorf("flowmetrics not up: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// It answers: a wrapper script has started it by now.
	ps := procTree(cmd.Process.Pid)
	cpu0 := ps.cpuTicks()
	res, err := flowgen.Send(ctx, flowgen.SendConfig{
		Config: flowgen.Config{Protocol: p, SamplingRate: 1, Seed: 1},
		Target: netip.MustParseAddrPort(flows), Exporters: exporters, Records: records, Rate: rate,
	})
	if ctx.Err() != nil && (err != nil || res.Records < records) {
		// A Ctrl-C also reaches the collector, whose socket then refuses.
		return stepResult{}, fmt.Errorf("%s: %v after sending %d of %d records", p, stopped(ctx), res.Records, records)
	}
	if err != nil {
		return stepResult{}, err
	}
	// Wait for the exporter to finish what is queued (the socket buffers
	// absorb a burst). Polling /metrics instead would bill each scrape
	// (~20 ms of CPU with gzip once the families are full) to the records
	// being measured.
	cpu, done, err := waitIdle(ps, 50*time.Millisecond)
	if err != nil {
		return stepResult{}, fmt.Errorf("%s: %w", p, err)
	}
	cpuSecs := float64(cpu-cpu0) / userHZ
	m, err := testkit.Scrape(url)
	if err != nil {
		return stepResult{}, err
	}
	counted, drops := m.Sum("flowmetrics_records_total", nil), m.Sum("flowmetrics_socket_drops_total", nil)
	lost := float64(res.Records) - counted // sFlow: one record per sample
	// From the first datagram sent (res.Start, after flowgen built its
	// rings), not from the call: building them takes some 10 ms per
	// exporter, which would read as a slower collector.
	secs := done.Sub(res.Start).Seconds()
	r := stepResult{rate: counted / secs, offered: rate, counted: counted, lost: lost, drops: drops, sent: float64(res.Records) / res.Elapsed.Seconds(), cpu: cpuSecs, busy: cpuSecs / secs, rssKB: ps.peakRSS()}
	fmt.Printf("%-6s %10s %12.0f %10d %10.0f %8.0f %8.0f %12.2f %6.0f %10s\n", p, offeredName(rate), r.rate, res.Records, counted, lost, drops,
		cpuSecs/(counted/1e6), 100*r.busy, formatRSS(r.rssKB))
	return r, nil
}
