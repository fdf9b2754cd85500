// Package flowmetricsreceiver is the OpenTelemetry Collector receiver of type
// "flowmetrics": it receives NetFlow v5/v9, IPFIX and sFlow v5 on UDP with
// the same intake, decoder, sampling correction and bounded families as the
// standalone flowmetrics exporter, and emits cumulative, monotonic sums per
// family and the pipeline's health metrics every collection interval.
//
// Add it to an ocb builder config with
//
//	receivers:
//	  - gomod: github.com/flowmetrics/flowmetrics v0.1.0
//	    import: github.com/flowmetrics/flowmetrics/receiver/flowmetricsreceiver
package flowmetricsreceiver
