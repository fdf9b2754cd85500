// Command flowgen sends realistic NetFlow v5, NetFlow v9, IPFIX or sFlow v5
// exports (templates, sampling options, heavy-tailed addresses and ports,
// several exporters and interfaces) to a collector, for demos and capacity
// tests. It refuses non-loopback targets unless --allow-remote is given.
package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/flowmetrics/flowmetrics/internal/flowgen"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New("flowgen", "Sends generated flow exports to a collector.")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	target := app.Flag("target", "Collector UDP address.").Default("127.0.0.1:2055").String()
	proto := app.Flag("protocol", "v5, v9, ipfix or sflow.").Default("v9").Enum("v5", "v9", "ipfix", "sflow")
	exporters := app.Flag("exporters", "Simulated exporters (several send from 127.0.0.10, .11, ... on an IPv4 loopback target; one sends from the address the system picks).").Default("1").Int()
	records := app.Flag("records", "Flow records (sFlow: samples) to send in all.").Default("300000").Int()
	rate := app.Flag("rate", "Records (sFlow: samples) per second, over all exporters together; 0 sends as fast as possible.").Default("0").Float64()
	dgRate := app.Flag("datagram-rate", "Data datagrams per second, instead of --rate.").Default("0").Float64()
	interfaces := app.Flag("interfaces", "Interfaces (ifIndex values) per exporter.").Default("8").Int()
	domain := app.Flag("domain", "Observation domain / source id / sub-agent of the first exporter; the others follow.").Default("0").Uint32()
	sameSource := app.Flag("same-source", "Send every exporter from one source address (distinct domains only).").Bool()
	tplEvery := app.Flag("template-every", "Resend templates and sampling options every this many data datagrams per exporter.").Default("100").Int()
	batch := app.Flag("batch", "Datagrams per sendmmsg system call.").Default("16").Int()
	duration := app.Flag("duration", "Stop after this long even if records remain.").Default("5m").Duration()
	sampling := app.Flag("sampling-rate", "Sampling rate the exports state (1:N).").Default("1").Uint32()
	hosts := app.Flag("hosts", "Address population (Zipf-distributed).").Default("10000").Int()
	drops := app.Flag("agent-drops", "sFlow: samples the simulated agent drops (its sample pool still counts them) before each one it sends.").Default("0").Uint32()
	seed := app.Flag("seed", "Random seed.").Default("1").Uint64()
	remote := app.Flag("allow-remote", "Allow a target outside 127.0.0.0/8 and ::1.").Bool()
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintln(stderr, "flowgen:", err)
		return 2
	}
	ap, err := netip.ParseAddrPort(*target)
	if err != nil {
		fmt.Fprintf(stderr, "flowgen: --target: %v\n", err)
		return 2
	}
	// The generator would quietly replace these (--hosts 1 by 10,000,
	// --interfaces 0 by 8), or run something other than asked for.
	for _, c := range []struct {
		bad bool
		msg string
	}{
		{*records < 1, "--records must be at least 1"},
		{*rate < 0, "--rate must be 0 (as fast as possible) or more"},
		{*dgRate < 0, "--datagram-rate must be 0 or more"},
		{*rate > 0 && *dgRate > 0, "--rate and --datagram-rate are alternatives: give one (--rate would win and --datagram-rate do nothing)"},
		{*exporters < 1, "--exporters must be at least 1"},
		{*interfaces < 1, "--interfaces must be at least 1"},
		// ifIndex is a 16-bit field in NetFlow v5 and flowgen's templates:
		// 65536 would go out as 0.
		{*interfaces > 65535, "--interfaces must be at most 65535 (ifIndex is a 16-bit field in the records)"},
		{*hosts < 2, "--hosts must be at least 2"},
		// Destinations are drawn from 172.16.0.0/12: more would wrap
		// around onto the same addresses.
		{*hosts > 1<<20, "--hosts must be at most 1048576 (destinations are drawn from 172.16.0.0/12)"},
		{*sampling < 1, "--sampling-rate must be at least 1 (1 = unsampled)"},
		{*tplEvery < 1, "--template-every must be at least 1"},
		{*batch < 1, "--batch must be at least 1"},
		// The kernel takes at most 1024 messages per sendmmsg (UIO_MAXIOV);
		// a larger batch only makes each exporter's ring that large.
		{*batch > 1024, "--batch must be at most 1024 (the most one sendmmsg call takes)"},
		{*duration <= 0, "--duration must be more than 0"},
		{*drops > 0 && *proto != "sflow", "--agent-drops applies to --protocol sflow only"},
	} {
		if c.bad {
			fmt.Fprintln(stderr, "flowgen:", c.msg)
			return 2
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	res, err := flowgen.Send(ctx, flowgen.SendConfig{
		Config: flowgen.Config{Protocol: flowgen.Protocol(*proto), Domain: *domain, SamplingRate: *sampling, Hosts: *hosts,
			Interfaces: *interfaces, AgentDrops: *drops, Seed: *seed},
		Target: ap, Exporters: *exporters, SameSource: *sameSource, Records: *records, Rate: *rate, DatagramRate: *dgRate,
		TemplateEvery: *tplEvery, Batch: *batch, AllowRemote: *remote,
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	secs := res.Elapsed.Seconds()
	fmt.Fprintf(stdout, "sent %d records in %d datagrams in %s (%.0f records/s); %s\n",
		res.Records, res.Datagrams, res.Elapsed.Round(time.Millisecond), float64(res.Records)/secs,
		volume(res, flowgen.Protocol(*proto), *sampling, *drops))
	return 0
}

// volume says what the records carry and what a collector that corrects
// for sampling should count: the bytes and packets the records state, times
// the sampling rate (for sFlow with --agent-drops, the effective rate).
func volume(res flowgen.Result, p flowgen.Protocol, rate, drops uint32) string {
	s := fmt.Sprintf("the records state %d bytes, %d packets", res.Bytes, res.Packets)
	eff := uint64(rate)
	if p == flowgen.SFlow {
		eff *= uint64(drops) + 1
	}
	if eff <= 1 {
		return s + " (unsampled)"
	}
	s += fmt.Sprintf("; x%d after sampling correction: %d bytes, %d packets", eff, res.Bytes*eff, res.Packets*eff)
	if eff != uint64(rate) {
		s += fmt.Sprintf(" (rate %d declared, %d effective with --agent-drops %d)", rate, eff, drops)
	}
	return s
}
