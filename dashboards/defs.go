package dashboards

import "fmt"

// Dashboard UIDs (stable: links and bookmarks use them).
const (
	TrafficUID   = "flowmetrics-traffic"
	HealthUID    = "flowmetrics-health"
	DrilldownUID = "flowmetrics-drilldown"
)

// File is one generated dashboard and the file it is written to.
type File struct {
	Name      string
	Dashboard *Dashboard
}

// All returns every dashboard with its file name, in a fixed order.
func All() []File {
	return []File{
		{"flowmetrics-traffic.json", Traffic()},
		{"flowmetrics-health.json", Health()},
		{"flowmetrics-drilldown.json", Drilldown()},
	}
}

// exporterVar is the exporter variable; multi selects with All = ".*"
// (which also matches the untracked exporter ""), otherwise one exporter.
func exporterVar(metric string, multi bool) *Variable {
	all := ""
	if multi {
		all = ".*"
	}
	return queryVar("exporter", "exporter", "Flow exporter (router, switch, host agent): its source address as flowmetrics identifies it.",
		fmt.Sprintf(`label_values(%s{job=~"$job", instance=~"$instance"}, exporter)`, metric), all)
}

// directionVar selects the direction label: the one the exporter stated
// (IPFIX/NetFlow v9 flowDirection: ingress/egress sampling, and routers
// that export both count a packet twice) or, for records that state none,
// enrichment's classification from enrich.networks (ingress = towards an
// internal network, egress, internal).
func directionVar(exporterMatcher string) *Variable {
	return queryVar("direction", "direction", "Direction of the flow records: as the exporter states it (ingress or egress sampling; routers that sample both report each packet twice: pick one) or, for records that state none, classified from enrich.networks (ingress: towards an internal network, egress: from one, internal: between two; there keep All, or the panels show only that share of the traffic). unknown: neither; other: the family's overflow series.",
		fmt.Sprintf(`label_values(flow_interface_bytes_total{job=~"$job", instance=~"$instance", %s}, direction)`, exporterMatcher), ".+")
}

// otherShare is the share of a family's bytes that landed in its overflow
// (other) series: 0 when there is none.
func otherShare(s scope, family, label string) *Target {
	m := "flow_" + family + "_bytes_total"
	return q(fmt.Sprintf("(%s or vector(0)) / %s", s.with(label+`="other"`).sumRate("", m), s.sumRate("", m)), family)
}

// Traffic is the traffic overview.
func Traffic() *Dashboard {
	s := allExporters
	ifs := s.with(`direction=~"$direction"`)
	b := newDashboard(TrafficUID, "flowmetrics / Traffic overview",
		"Sampling-corrected traffic seen by flow exporters: totals, interfaces, protocols, applications, top talkers, AS pairs and the share folded into other.",
		append(jobInstanceVars("flow_exporter_bytes_total"), exporterVar("flow_exporter_bytes_total", true), directionVar(`exporter=~"$exporter"`))...)

	b.row("Totals")
	b.add(6, 5,
		stat("Throughput", "Bits per second over the selected exporters, corrected for sampling (bytes × 8).", "bps",
			q(bits(s.sumRate("", "flow_exporter_bytes_total")), "bps")),
		stat("Packet rate", "Packets per second over the selected exporters, corrected for sampling.", "pps",
			q(s.sumRate("", "flow_exporter_packets_total"), "pps")),
		stat("Flow records", "Flow records (sFlow: samples) per second, not scaled by the sampling rate.", "cps",
			q(s.sumRate("", "flow_exporter_flows_total"), "records/s")),
		stat("Bytes in other (hosts)", "Share of bytes the source-host family folded into its other series because it was full; high values mean the top-talker panels miss much of the traffic.", "percentunit",
			otherShare(s, "src_host", "src_addr"), maxOf(1), redAbove(0.5)),
	)
	b.add(12, 8,
		ts("Throughput by exporter", "Bits per second per exporter, corrected for sampling.", "bps",
			bits(s.sumRate("exporter", "flow_exporter_bytes_total")), "{{exporter}}"),
		ts("Packet rate by exporter", "Packets per second per exporter, corrected for sampling.", "pps",
			s.sumRate("exporter", "flow_exporter_packets_total"), "{{exporter}}"),
	)

	b.row("Interfaces")
	b.add(12, 9,
		ts("Inbound by interface", "Bits per second entering each interface (flows by input interface, in_if), named from flowmetrics_interface_info (static config or SNMP) where known. Click a series to drill down.", "bps",
			bits("("+ifNames(jobInstance, "in_if", ifs.sumRate("exporter, in_if", "flow_interface_bytes_total"))+")"), "{{exporter}} {{if_name}} (if {{in_if}}) in", drillLink("in_if")),
		ts("Outbound by interface", "Bits per second leaving each interface (flows by output interface, out_if), named where known. Click a series to drill down.", "bps",
			bits("("+ifNames(jobInstance, "out_if", ifs.sumRate("exporter, out_if", "flow_interface_bytes_total"))+")"), "{{exporter}} {{if_name}} (if {{out_if}}) out", drillLink("out_if")),
	)
	b.add(12, 8,
		ts("Inbound utilisation", "Inbound bit rate over the interface speed (flowmetrics_interface_speed_bits_per_second, from static config or SNMP ifSpeed/ifHighSpeed); interfaces without a known speed are not shown. Sampling-corrected estimate.", "percentunit",
			ifNames(jobInstance, "in_if", ifUtilisation(jobInstance, "in_if", bits(ifs.sumRate("exporter, in_if", "flow_interface_bytes_total")))), "{{exporter}} {{if_name}} (if {{in_if}}) in"),
		ts("Outbound utilisation", "Outbound bit rate over the interface speed; interfaces without a known speed are not shown.", "percentunit",
			ifNames(jobInstance, "out_if", ifUtilisation(jobInstance, "out_if", bits(ifs.sumRate("exporter, out_if", "flow_interface_bytes_total")))), "{{exporter}} {{if_name}} (if {{out_if}}) out"),
	)

	b.row("Protocols and applications")
	b.add(12, 9,
		ts("By IP protocol", "Bits per second per IP protocol and IP version.", "bps",
			bits(s.sumRate("proto, ip_version", "flow_protocol_bytes_total")), "{{proto}} IPv{{ip_version}}", stacked),
		ts("Top services", fmt.Sprintf("The %d busiest services in bits per second: well-known port names (https, dns...), ephemeral-to-ephemeral traffic as \"ephemeral\", other ports by number, \"none\" for protocols without ports.", TopN), "bps",
			bits(topk(s.with(`service!="other"`).sumRate("proto, service", "flow_service_bytes_total"))), "{{proto}}/{{service}}"),
	)

	b.row("Top talkers")
	b.add(8, 9,
		ts("Top sources", fmt.Sprintf("The %d source addresses sending the most bits per second (other excluded). A host seen by several exporters is summed over them.", TopN), "bps",
			bits(topk(s.with(`src_addr!="other"`).sumRate("src_addr", "flow_src_host_bytes_total"))), "{{src_addr}}"),
		ts("Top destinations", fmt.Sprintf("The %d destination addresses receiving the most bits per second (other excluded).", TopN), "bps",
			bits(topk(s.with(`dst_addr!="other"`).sumRate("dst_addr", "flow_dst_host_bytes_total"))), "{{dst_addr}}"),
		ts("Top destinations by packet rate", fmt.Sprintf("The %d destination addresses receiving the most packets per second: a sudden leader here is the usual sign of a flood (DDoS).", TopN), "pps",
			topk(s.with(`dst_addr!="other"`).sumRate("dst_addr", "flow_dst_host_packets_total")), "{{dst_addr}}"),
	)
	b.add(12, 9,
		ts("Top AS pairs", fmt.Sprintf("The %d busiest source AS → destination AS pairs in bits per second (AS 0: the exporter sent no AS numbers).", TopN), "bps",
			bits(topk(s.with(`src_as!="other"`).sumRate("src_as, dst_as", "flow_as_pair_bytes_total"))), "AS{{src_as}} → AS{{dst_as}}"),
		timeseries("Share of bytes in other, by family", "Share of each family's bytes that went to its other (overflow) series because the family was at its series limit. The family totals stay exact; only the breakdown is lost.", "percentunit",
			[]*Target{
				otherShare(s, "interface", "in_if"), otherShare(s, "protocol", "proto"), otherShare(s, "application", "port"), otherShare(s, "service", "service"),
				otherShare(s, "src_host", "src_addr"), otherShare(s, "dst_host", "dst_addr"), otherShare(s, "as_pair", "src_as"),
			}, maxOf(1)),
	)
	return b.done()
}

// Health is the exporter-health (on-call) dashboard.
func Health() *Dashboard {
	s := allExporters
	ji := jobInstance
	lastSeen := s.sel("flowmetrics_exporter_last_seen_timestamp_seconds")
	b := newDashboard(HealthUID, "flowmetrics / Exporter health",
		"Is every flow exporter sending, decoding and counted completely? Silence, decode errors, template misses, sequence loss, sampling, socket drops, cardinality and latency.",
		append(jobInstanceVars("flowmetrics_exporters"), exporterVar("flowmetrics_exporter_last_seen_timestamp_seconds", true))...)

	b.row("Exporters")
	b.add(6, 5,
		stat("Exporters tracked", "Exporters flowmetrics currently keeps state for (templates, sequence numbers, sampling rate).", "short",
			q(sumBy("", ji.sel("flowmetrics_exporters")), "exporters")),
		stat("Silent exporters", "Exporters whose last datagram is more than 5 minutes old, stray senders (a misdirected syslog line, a port scan) included: alert FlowmetricsExporterSilent fires when that has lasted 5 more minutes, for addresses that delivered flow records or data sets.", "short",
			q(fmt.Sprintf("count(time() - %s > 300) or vector(0)", lastSeen), "silent"), redAbove(1)),
		stat("Datagrams", "UDP datagrams received per second from the selected exporters.", "cps",
			q(s.sumRate("", "flowmetrics_datagrams_total"), "datagrams/s")),
		stat("Records", "Flow records (sFlow: flow samples) decoded per second.", "cps",
			q(s.sumRate("", "flowmetrics_records_total"), "records/s")),
	)
	b.add(8, 8,
		ts("Time since last datagram", "Seconds since each exporter's last datagram; a line that keeps climbing is a silent exporter.", "s",
			"time() - "+lastSeen, "{{exporter}}", link("Drill down into this exporter", "/d/"+DrilldownUID+"/flowmetrics-interface-drill-down?${datasource:queryparam}&${job:queryparam}&${instance:queryparam}&var-exporter=${__field.labels.exporter}&${__url_time_range}")),
		ts("Datagrams by exporter", "Datagrams per second by exporter and wire protocol (netflow_v5, netflow_v9, ipfix, sflow_v5).", "cps",
			s.sumRate("exporter, protocol", "flowmetrics_datagrams_total"), "{{exporter}} {{protocol}}"),
		ts("Records by exporter", "Flow records per second by exporter and wire protocol.", "cps",
			s.sumRate("exporter, protocol", "flowmetrics_records_total"), "{{exporter}} {{protocol}}"),
	)

	b.row("Decoding")
	implausible := s.with(`reason="implausible_value"`).sumRate("exporter", "flowmetrics_decode_errors_total")
	b.add(6, 8,
		ts("Decode errors by reason", "Decode errors per second, by exporter and reason (exporter empty: from an exporter not tracked). Most count a datagram or a set; template_missing counts data sets, template_invalid and template_limit count refused templates, implausible_value counts records dropped.", "cps",
			s.sumRate("exporter, reason", "flowmetrics_decode_errors_total"), "{{exporter}} {{reason}}"),
		timeseries("Decode error ratio", "Decode errors per datagram received (at most 100%: a datagram can carry several refused templates), template misses and implausible values left out: template misses count one per data set and are normal after a restart until the templates arrive (see Template misses), implausible values count one per record, so they are shown as a share of records instead (alert FlowmetricsDecodeErrorRatioHigh: either above 5%).", "percentunit",
			[]*Target{
				// Capped at 1 as the rule is: template refusals count
				// one per template, several in one datagram.
				q("clamp_max("+s.with(`reason!~"template_missing|implausible_value"`).sumRate("exporter", "flowmetrics_decode_errors_total")+" / "+s.sumRate("exporter", "flowmetrics_datagrams_total")+", 1)", "{{exporter}} datagrams"),
				// records_total is served only once an exporter has
				// records: "or ... * 0" keeps an exporter whose every
				// record was dropped (1), as the alert's rule does.
				q(fmt.Sprintf("%s / (%s + (%s or %s * 0))", implausible, implausible, s.sumRate("exporter", "flowmetrics_records_total"), implausible), "{{exporter}} implausible records"),
			}),
		ts("Template misses", "NetFlow v9/IPFIX data sets skipped per second because their template was not known yet (alert FlowmetricsTemplateMissesPersist).", "cps",
			s.sumRate("exporter", "flowmetrics_template_missing_sets_total"), "{{exporter}}"),
		ts("Templates known", "NetFlow v9/IPFIX templates currently known per exporter.", "short",
			sumBy("exporter", s.sel("flowmetrics_templates")), "{{exporter}}"),
	)

	b.row("Loss and sampling")
	lost := s.sumRate("exporter", "flowmetrics_sequence_lost_records_total")
	b.add(6, 8,
		ts("Sequence-gap loss ratio", "Records estimated lost in transit (from sequence-number gaps) over records received plus lost (alert FlowmetricsSequenceLossHigh).", "percentunit",
			fmt.Sprintf("%s / (%s + %s)", lost, lost, s.sumRate("exporter", "flowmetrics_records_total")), "{{exporter}}"),
		timeseries("Sequence gaps and resets", "Sequence gaps per second (loss) and sequence resets per second (exporter restarts, not loss).", "cps",
			[]*Target{
				q(s.sumRate("exporter", "flowmetrics_sequence_gaps_total"), "{{exporter}} gaps"),
				q(s.sumRate("exporter", "flowmetrics_sequence_resets_total"), "{{exporter}} resets"),
			}),
		ts("Sampling rate in force", "The 1:N sampling rate applied to each exporter's latest records, and where it came from: header (NetFlow v5 header, sFlow sample), sample_pool (sFlow: the effective rate measured from the sample pool; the rate the samples state is shown beside it as header), domain_options or sampler_options (NetFlow v9/IPFIX options data), record (a field of the record), override (sampling.overrides), default (sampling.default_rate), unresolved (none known: counted 1:1, alert FlowmetricsSamplingRateUnknown). Traffic counters are multiplied by it.", "short",
			"max by (exporter, source) ("+s.sel("flowmetrics_sampling_rate")+")", "{{exporter}} 1:N ({{source}})"),
		ts("Records without a sampling rate", "Records per second for which no sampling rate was known; they are counted 1:1 and undercount if the exporter samples (alert FlowmetricsSamplingRateUnknown: more than 1% of the exporter's records).", "cps",
			s.sumRate("exporter", "flowmetrics_sampling_unresolved_records_total"), "{{exporter}}"),
	)

	b.row("Intake and capacity")
	b.add(6, 8,
		ts("Socket drops", "Datagrams per second the kernel dropped on each UDP socket because its receive buffer was full (alert FlowmetricsSocketDrops).", "cps",
			ji.sumRate("instance, address, socket", "flowmetrics_socket_drops_total"), "{{instance}} {{address}} #{{socket}}"),
		ts("Socket receive buffer", "Effective SO_RCVBUF of each socket (Linux caps it at net.core.rmem_max).", "bytes",
			"max by (instance, address, socket) ("+ji.sel("flowmetrics_socket_receive_buffer_bytes")+")", "{{instance}} {{address}} #{{socket}}"),
		timeseries("Processing latency", "Time to decode and count one datagram: median and 99th percentile per instance.", "s",
			[]*Target{
				q("histogram_quantile(0.5, "+ji.sumRate("instance, le", "flowmetrics_processing_duration_seconds_bucket")+")", "{{instance}} p50"),
				q("histogram_quantile(0.99, "+ji.sumRate("instance, le", "flowmetrics_processing_duration_seconds_bucket")+")", "{{instance}} p99"),
			}),
		ts("Exporters forgotten", "Exporters forgotten per second to stay within max_exporters (compare Exporters tracked): a forgotten exporter that sends again loses its templates and sampling state (alert FlowmetricsExportersEvicted).", "cps",
			ji.sumRate("instance", "flowmetrics_exporters_evicted_total"), "{{instance}}"),
	)
	b.add(8, 8,
		ts("Series per family against its limit", "Series each family holds over its configured series limit; at 100% new keys fold into other. Normal for the top-talker families (src_host, dst_host); alert FlowmetricsFamilyAtSeriesLimit fires when a full family folds more than half of the records (see Records folded into other).", "percentunit",
			"max by (instance, family) ("+ji.sel("flowmetrics_family_series")+") / max by (instance, family) ("+ji.sel("flowmetrics_family_series_limit")+")", "{{instance}} {{family}}", maxOf(1)),
		ts("Records folded into other", "Records per second folded into a family's other series because the family was full (alert FlowmetricsFamilyAtSeriesLimit: more than half of the instance's records over an hour, family full).", "cps",
			ji.sumRate("instance, family", "flowmetrics_family_other_records_total"), "{{instance}} {{family}}"),
		ts("Series evictions", "Series frozen per second, by family and cause (idle: no traffic for the idle timeout; replaced: a heavier key took the slot).", "cps",
			ji.sumRate("family, cause", "flowmetrics_family_evictions_total"), "{{family}} {{cause}}"),
	)
	return b.done()
}

// Drilldown is the one-exporter, one-interface drill-down.
func Drilldown() *Dashboard {
	s := oneExporter
	ifs := s.with(`direction=~"$direction"`)
	in, out := ifs.with(`in_if="$interface"`), ifs.with(`out_if="$interface"`)
	ifVar := queryVar("interface", "interface", "Interface index (SNMP ifIndex) as the exporter reports it; the list holds the interfaces seen as input interface.",
		`label_values(flow_interface_bytes_total{job=~"$job", instance=~"$instance", exporter="$exporter"}, in_if)`, "")
	b := newDashboard(DrilldownUID, "flowmetrics / Interface drill-down",
		"One exporter and one of its interfaces: inbound and outbound traffic, where it goes, who talks and which protocols.",
		append(jobInstanceVars("flow_interface_bytes_total"), exporterVar("flow_interface_bytes_total", false), ifVar, directionVar(`exporter="$exporter"`))...)

	b.row("Interface $interface on $exporter")
	b.add(6, 5,
		stat("Inbound", "Bits per second entering the interface (flows with in_if = $interface).", "bps",
			q(bits(in.sumRate("", "flow_interface_bytes_total")), "in")),
		stat("Outbound", "Bits per second leaving the interface (flows with out_if = $interface).", "bps",
			q(bits(out.sumRate("", "flow_interface_bytes_total")), "out")),
		stat("Inbound packets", "Packets per second entering the interface.", "pps",
			q(in.sumRate("", "flow_interface_packets_total"), "in")),
		stat("Outbound packets", "Packets per second leaving the interface.", "pps",
			q(out.sumRate("", "flow_interface_packets_total"), "out")),
	)
	b.add(12, 8,
		timeseries("In / out throughput", "Bits per second in (by in_if) and out (by out_if) of the interface.", "bps",
			[]*Target{q(bits(in.sumRate("", "flow_interface_bytes_total")), "in"), q(bits(out.sumRate("", "flow_interface_bytes_total")), "out")}),
		timeseries("In / out packet rate", "Packets per second in and out of the interface.", "pps",
			[]*Target{q(in.sumRate("", "flow_interface_packets_total"), "in"), q(out.sumRate("", "flow_interface_packets_total"), "out")}),
	)
	b.add(12, 8,
		ts("Inbound traffic by output interface", "Where the traffic entering $interface leaves the exporter (out_if 0: dropped, local or unknown).", "bps",
			bits(in.sumRate("out_if", "flow_interface_bytes_total")), "to if {{out_if}}", stacked),
		ts("Outbound traffic by input interface", "Where the traffic leaving $interface entered the exporter.", "bps",
			bits(out.sumRate("in_if", "flow_interface_bytes_total")), "from if {{in_if}}", stacked),
	)

	b.row("Conversations and protocols on $exporter")
	b.add(8, 9,
		ts("Top sources", fmt.Sprintf("The %d busiest source addresses on the exporter (the host families carry no interface label, so this is the whole exporter).", TopN), "bps",
			bits(topk(s.with(`src_addr!="other"`).sumRate("src_addr", "flow_src_host_bytes_total"))), "{{src_addr}}"),
		ts("Top destinations", fmt.Sprintf("The %d busiest destination addresses on the exporter (whole exporter, as above).", TopN), "bps",
			bits(topk(s.with(`dst_addr!="other"`).sumRate("dst_addr", "flow_dst_host_bytes_total"))), "{{dst_addr}}"),
		ts("Protocol mix", "Bits per second per IP protocol and version on the exporter.", "bps",
			bits(s.sumRate("proto, ip_version", "flow_protocol_bytes_total")), "{{proto}} IPv{{ip_version}}", stacked),
	)
	b.add(12, 8,
		ts("Top services", fmt.Sprintf("The %d busiest services (well-known port names, ephemeral grouped) on the exporter.", TopN), "bps",
			bits(topk(s.with(`service!="other"`).sumRate("proto, service", "flow_service_bytes_total"))), "{{proto}}/{{service}}"),
		ts("Sampling rate in force", "The 1:N sampling rate applied to the exporter's latest records: the traffic figures are estimates scaled by it.", "short",
			"max by (source) ("+s.sel("flowmetrics_sampling_rate")+")", "1:N ({{source}})"),
	)
	return b.done()
}
