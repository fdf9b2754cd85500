package main

import (
	"net"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/flowgen"
)

// TestSFlowAgentDropsCorrected sends, over UDP, the sFlow of an agent that
// samples 1:10 but drops every other sample for lack of resources (its
// sample pool still counts their packets). Once the pool has been measured
// over enough samples, each sample stands for 20 packets, not the 10 the
// samples declare: the packets counted for a second batch of datagrams are
// exactly 20 per sample, and the rate gauge says where 20 came from and
// still shows the 10 the agent states.
func TestSFlowAgentDropsCorrected(t *testing.T) {
	in := start(t)
	// Two input interfaces: two sources, each with its own sequence and pool.
	g, err := flowgen.New(flowgen.Config{Protocol: flowgen.SFlow, Domain: 1, SamplingRate: 10, AgentDrops: 1, Interfaces: 2, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", in.flowAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	per := flowgen.RecordsPerDatagram(flowgen.SFlow)
	send := func(datagrams int) {
		for i := 0; i < datagrams; i++ {
			dg, _ := g.Data(nil)
			if _, err := conn.Write(dg); err != nil {
				t.Fatal(err)
			}
			if i%50 == 49 {
				time.Sleep(5 * time.Millisecond) // stay well inside the socket buffer
			}
		}
	}
	// Warm-up: the first 1,024 samples of each source keep the declared
	// rate; 400 datagrams are ~1,600 samples per source.
	send(400)
	before := in.settle(t, float64(400*per))
	send(300)
	after := in.settle(t, float64(700*per))
	assertHealthy(t, after)

	records := sum(after, "flowmetrics_records_total", nil) - sum(before, "flowmetrics_records_total", nil)
	packets := sum(after, "flow_exporter_packets_total", nil) - sum(before, "flow_exporter_packets_total", nil)
	if records != float64(300*per) || packets != 20*records {
		t.Fatalf("second batch: %v records, %v packets; want %d records of 20 packets each", records, packets, 300*per)
	}
	// The warm-up was scaled by the declared rate until the pool was known.
	if warm := sum(before, "flow_exporter_packets_total", nil); warm >= 20*float64(400*per) || warm <= 10*float64(400*per) {
		t.Errorf("warm-up: %v packets for %d samples, want between 10 and 20 each", warm, 400*per)
	}
	if got := sum(after, "flowmetrics_sampling_rate", map[string]string{"source": "sample_pool"}); got != 20 {
		t.Errorf("sampling rate gauge {source=sample_pool} = %v, want 20", got)
	}
	// The rate the samples state stays visible beside it.
	if got := sum(after, "flowmetrics_sampling_rate", map[string]string{"source": "header"}); got != 10 {
		t.Errorf("sampling rate gauge {source=header} = %v, want 10 (the stated rate)", got)
	}
}
