package main

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/flowgen"
)

// collector is one program under comparison.
type collector struct {
	name string
	args func(port string, dir string) []string
	bin  string
}

// udpDrops returns the kernel's drop count of the UDP socket bound to port.
func udpDrops(port int) float64 {
	var total float64
	for _, p := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 13 {
				continue
			}
			if i := strings.LastIndexByte(fs[1], ':'); i >= 0 {
				if lp, err := strconv.ParseInt(fs[1][i+1:], 16, 32); err == nil && int(lp) == port {
					d, _ := strconv.ParseFloat(fs[12], 64)
					total += d
				}
			}
		}
		f.Close()
	}
	return total
}

// compareCollectors sends the same generated stream to each collector in
// turn, one fresh process per step, at each offered rate, and prints per
// protocol and collector the CPU seconds per million records (at the lowest
// rate, where every collector keeps up) and the highest rate with no kernel
// socket drops, each with its ratio to flowmetrics.
func compareCollectors(ctx context.Context, flowmetrics, goflow2 string, protos []string, rates []float64, records, exporters int) error {
	cols := []collector{{name: "flowmetrics", bin: flowmetrics, args: func(port, _ string) []string {
		return []string{"--flow.listen-address=127.0.0.1:" + port, "--web.listen-address=127.0.0.1:0", "--log.level=warn"}
	}}}
	if goflow2 != "" {
		cols = append(cols, collector{name: "goflow2", bin: goflow2, args: func(port, _ string) []string {
			return []string{"-listen", "netflow://127.0.0.1:" + port + ",sflow://127.0.0.1:" + freePort("udp")[10:],
				"-format", "bin", "-transport.file", "/dev/null", "-addr", "127.0.0.1:0", "-loglevel", "warn"}
		}})
	}
	if p, err := exec.LookPath("nfcapd"); err == nil {
		cols = append(cols, collector{name: "nfcapd", bin: p, args: func(port, dir string) []string {
			return []string{"-w", dir, "-p", port, "-b", "127.0.0.1", "-B", strconv.Itoa(compareBuffer)}
		}})
	}
	restore, err := equalBuffers(sysctlDir, compareBuffer)
	if err != nil {
		fmt.Printf("receive buffers unequal: %v; goflow2 (which has no setting) gets the kernel's default, nfcapd at most net.core.rmem_max, flowmetrics %d bytes, so drops compare more than speed\n", err, compareBuffer)
	} else {
		defer restore()
		fmt.Printf("receive buffers: net.core.rmem_default and rmem_max raised to %d bytes for the comparison (restored after), so that goflow2, which has no setting, and nfcapd get what flowmetrics asks for\n", compareBuffer)
	}
	low := lowestRate(rates)
	if rates[low] > 0 {
		fmt.Printf("cpu_s/Mrec: CPU seconds per million records sent at %.0f records/s\n", rates[low])
	} else {
		fmt.Println("cpu_s/Mrec: CPU seconds per million records sent as fast as the sender can")
	}
	fmt.Printf("%-6s %-12s %12s %8s %16s %8s\n", "proto", "collector", "cpu_s/Mrec", "ratio", "zero-loss rec/s", "ratio")
	for _, p := range protos {
		var baseCPU, baseRate float64
		for _, c := range cols {
			if p == "sflow" && c.name == "nfcapd" {
				continue // nfcapd takes NetFlow/IPFIX; sfcapd is another program
			}
			var cpuPerM, best float64
			for i, rate := range rates {
				if ctx.Err() != nil {
					return stopped(ctx)
				}
				perM, drops, sent, err := compareStep(ctx, c, flowgen.Protocol(p), rate, records, exporters)
				if err != nil {
					return err
				}
				if i == low {
					cpuPerM = perM
				}
				if drops == 0 && sent > best {
					best = sent
				}
			}
			if c.name == "flowmetrics" {
				baseCPU, baseRate = cpuPerM, best
			}
			fmt.Printf("%-6s %-12s %12.2f %7.2fx %16.0f %7.2fx\n", p, c.name, cpuPerM, cpuPerM/baseCPU, best, best/baseRate)
		}
	}
	return nil
}

// lowestRate returns the index of the lowest offered rate (0, as fast as
// possible, counts as the highest).
func lowestRate(rates []float64) int {
	low := 0
	for i, r := range rates {
		if r > 0 && (rates[low] <= 0 || r < rates[low]) {
			low = i
		}
	}
	return low
}

// compareStep runs one collector for one offered rate and returns its CPU
// seconds per million records sent, the kernel's drops on its socket and
// the rate the sender achieved.
func compareStep(ctx context.Context, c collector, p flowgen.Protocol, rate float64, records, exporters int) (cpuPerM, drops, sentRate float64, err error) {
	addr := freePort("udp")
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	if p == flowgen.SFlow && c.name == "goflow2" {
		// goflow2's second listener is sFlow: swap the roles.
		c.args = func(port, _ string) []string {
			return []string{"-listen", "sflow://127.0.0.1:" + port, "-format", "bin", "-transport.file", "/dev/null",
				"-addr", "127.0.0.1:0", "-loglevel", "warn"}
		}
	}
	dir, err := os.MkdirTemp("", "loadtest-"+c.name)
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(c.bin, c.args(port, dir)...)
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, fmt.Errorf("%s: %w", c.name, err)
	}
	defer stopCollector(cmd)
	time.Sleep(time.Second)
	ps := procTree(cmd.Process.Pid)
	cpu0 := ps.cpuTicks()
	res, err := flowgen.Send(ctx, flowgen.SendConfig{
		Config: flowgen.Config{Protocol: p, SamplingRate: 1, Seed: 1},
		Target: netip.MustParseAddrPort(addr), Exporters: exporters, Records: records, Rate: rate,
	})
	if ctx.Err() != nil && (err != nil || res.Records < records) {
		return 0, 0, 0, fmt.Errorf("%s, %s: %v after sending %d of %d records", c.name, p, stopped(ctx), res.Records, records)
	}
	if err != nil {
		return 0, 0, 0, err
	}
	// Let it drain, then read CPU and drops before stopping it.
	ticks, _, err := waitIdle(ps, 300*time.Millisecond)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%s: %w", c.name, err)
	}
	cpu := float64(ticks-cpu0) / userHZ
	pn, _ := strconv.Atoi(port)
	return cpu / (float64(res.Records) / 1e6), udpDrops(pn), float64(res.Records) / res.Elapsed.Seconds(), nil
}

// compareBuffer is the receive buffer every collector gets in a
// comparison: flowmetrics' default receive_buffer_bytes.
const compareBuffer = 32 << 20

// sysctlDir is where equalBuffers finds the kernel's settings.
var sysctlDir = "/proc/sys"

// equalBuffers raises net.core.rmem_default and net.core.rmem_max (under
// dir) to at least size, so that a collector that sets no receive buffer
// (goflow2 v2.2.6 has no option for it) or one capped by rmem_max (nfcapd's
// -B) gets the buffer flowmetrics sets for itself; the comparison would
// otherwise measure buffer sizes as much as speed in its drops. restore
// puts back the values found. It needs root; on error nothing is changed.
func equalBuffers(dir string, size int) (restore func(), err error) {
	names := []string{"net/core/rmem_default", "net/core/rmem_max"}
	var old []string
	for _, n := range names {
		b, err := os.ReadFile(dir + "/" + n)
		if err != nil {
			return nil, err
		}
		old = append(old, strings.TrimSpace(string(b)))
	}
	restore = func() {
		for i, n := range names {
			_ = os.WriteFile(dir+"/"+n, []byte(old[i]+"\n"), 0o644)
		}
	}
	for i, n := range names {
		if v, err := strconv.Atoi(old[i]); err == nil && v >= size {
			continue
		}
		if err := os.WriteFile(dir+"/"+n, []byte(strconv.Itoa(size)+"\n"), 0o644); err != nil {
			restore()
			return nil, err
		}
	}
	return restore, nil
}
