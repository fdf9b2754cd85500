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

// compareCollectors sends the same generated stream, as fast as the sender
// can, to each collector in turn and prints CPU per million records and the
// kernel's drops, with ratios against flowmetrics.
func compareCollectors(flowmetrics, goflow2 string, protos []string, records, exporters int) error {
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
			return []string{"-w", dir, "-p", port, "-b", "127.0.0.1", "-B", "33554432"}
		}})
	}
	fmt.Printf("%-6s %-12s %12s %8s %14s %8s\n", "proto", "collector", "records", "drops", "cpu_s/Mrec", "ratio")
	for _, p := range protos {
		var base float64
		for _, c := range cols {
			if c.name == "nfcapd" && p == "sflow" {
				continue // nfcapd takes NetFlow/IPFIX; sfcapd is another program
			}
			addr := freePort("udp")
			port := addr[strings.LastIndexByte(addr, ':')+1:]
			dir, _ := os.MkdirTemp("", "loadtest-"+c.name)
			cmd := exec.Command(c.bin, c.args(port, dir)...)
			if err := cmd.Start(); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			time.Sleep(time.Second)
			cpu0 := cpuSeconds(cmd.Process.Pid)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			res, err := flowgen.Send(ctx, flowgen.SendConfig{
				Config: flowgen.Config{Protocol: flowgen.Protocol(p), SamplingRate: 1, Seed: 1},
				Target: netip.MustParseAddrPort(addr), Exporters: exporters, Records: records,
			})
			cancel()
			if err != nil {
				return err
			}
			// Let it drain, then read CPU and drops before stopping it.
			var cpu float64
			for last := -1.0; ; last = cpu {
				time.Sleep(300 * time.Millisecond)
				if cpu = cpuSeconds(cmd.Process.Pid) - cpu0; cpu == last {
					break
				}
			}
			pn, _ := strconv.Atoi(port)
			drops := udpDrops(pn)
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
			os.RemoveAll(dir)
			perM := cpu / (float64(res.Records) / 1e6)
			if c.name == "flowmetrics" {
				base = perM
			}
			fmt.Printf("%-6s %-12s %12d %8.0f %14.2f %7.1fx\n", p, c.name, res.Records, drops, perM, perM/base)
		}
	}
	return nil
}
