// Command genpcap writes the deterministic synthetic pcap that the tests and
// `make demo` replay through real exporters, and prints its totals.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

func main() {
	out := flag.String("o", "demo.pcap", "output pcap file")
	seed := flag.Int64("seed", 1, "generator seed")
	packets := flag.Int("packets", 3000, "traffic frames")
	flows := flag.Int("flows", 40, "flows")
	flag.Parse()
	truth, err := testkit.WritePcap(*out, testkit.Spec{Seed: *seed, Packets: *packets, Flows: *flows, IPv6: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "genpcap:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d packets, %d IP bytes, %d flows, top source %s\n",
		*out, truth.Total.Packets, truth.Total.Bytes, len(truth.ByFlow), truth.TopSources()[0])
}
