package promexport

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/flow"
)

func TestCollectTrafficFamilies(t *testing.T) {
	c := core.New(core.Config{
		MaxExporters: 4,
		Families:     []aggregate.Spec{{Name: "proto", Labels: []aggregate.Label{aggregate.LabelExporter, aggregate.LabelProto}, Limit: 1}},
	})
	ex := c.Exporters().Get(netip.MustParseAddr("192.0.2.1"))
	recs := []flow.Record{
		{Exporter: ex.Addr, Proto: 6, Bytes: 100, Packets: 2, SamplingRate: 10, RateSource: flow.RateHeader, Protocol: flow.NetFlowV5},
		{Exporter: ex.Addr, Proto: 17, Bytes: 50, Packets: 1, SamplingRate: 10, RateSource: flow.RateHeader, Protocol: flow.NetFlowV5},
	}
	c.Process(ex, recs, time.Unix(1700000000, 0))
	col := New(c, nil)
	want := `
# HELP flow_proto_bytes_total Bytes, corrected for sampling, by exporter, proto.
# TYPE flow_proto_bytes_total counter
flow_proto_bytes_total{exporter="192.0.2.1",proto="other"} 500
flow_proto_bytes_total{exporter="192.0.2.1",proto="tcp"} 1000
# HELP flow_proto_packets_total Packets, corrected for sampling, by exporter, proto.
# TYPE flow_proto_packets_total counter
flow_proto_packets_total{exporter="192.0.2.1",proto="other"} 10
flow_proto_packets_total{exporter="192.0.2.1",proto="tcp"} 20
# HELP flow_exporter_flows_total Flow records (sFlow: samples), not scaled, by exporter.
# TYPE flow_exporter_flows_total counter
flow_exporter_flows_total{exporter="192.0.2.1"} 2
# HELP flowmetrics_records_total Flow records (sFlow: flow samples) decoded and counted, by exporter and wire protocol.
# TYPE flowmetrics_records_total counter
flowmetrics_records_total{exporter="192.0.2.1",protocol="netflow_v5"} 2
# HELP flowmetrics_sampling_rate Sampling rate (1:N) in force for the exporter's most recent records, and where it came from.
# TYPE flowmetrics_sampling_rate gauge
flowmetrics_sampling_rate{exporter="192.0.2.1",source="header"} 10
# HELP flowmetrics_family_other_records_total Records folded into an other series because the family was full.
# TYPE flowmetrics_family_other_records_total counter
flowmetrics_family_other_records_total{family="exporter"} 0
flowmetrics_family_other_records_total{family="proto"} 1
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want),
		"flow_proto_bytes_total", "flow_proto_packets_total", "flow_exporter_flows_total",
		"flowmetrics_records_total", "flowmetrics_sampling_rate", "flowmetrics_family_other_records_total"); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(col); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
