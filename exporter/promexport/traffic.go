package promexport

import (
	"bufio"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/flowmetrics/flowmetrics/exporter/metricset"
	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/core"
)

// Traffic families can hold hundreds of thousands of series. Building a
// client_golang const metric per sample costs ~15 allocations each and
// 2.3 s per scrape of 100,000 series, so the traffic metrics are written
// straight to the text exposition format from the families' points; the
// pipeline's own (small) metrics still go through client_golang.

// textContentType is the Prometheus text exposition format 0.0.4.
const textContentType = "text/plain; version=0.0.4; charset=utf-8"

// HandlerOpts configure NewHandler.
type HandlerOpts struct {
	// ErrorLog, if not nil, is given the errors of gathering reg's
	// metrics (the partial results are still served, as promhttp does).
	ErrorLog func(error)
	// MaxRequestsInFlight bounds the scrapes served at once, each of
	// which copies every family's points (0: no bound). A request beyond
	// it is answered 503 at once, as promhttp does.
	MaxRequestsInFlight int
}

// NewHandler serves /metrics: everything reg gathers, then the traffic
// families of c. It answers in the text format, gzip-compressed when the
// request accepts gzip.
func NewHandler(reg prometheus.Gatherer, c *core.Core, opts HandlerOpts) http.Handler {
	var inFlight chan struct{}
	if opts.MaxRequestsInFlight > 0 {
		inFlight = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inFlight != nil {
			select {
			case inFlight <- struct{}{}:
				defer func() { <-inFlight }()
			default:
				http.Error(w, "Limit of concurrent requests reached ("+strconv.Itoa(opts.MaxRequestsInFlight)+"), try again later.", http.StatusServiceUnavailable)
				return
			}
		}
		mfs, err := reg.Gather()
		if err != nil && opts.ErrorLog != nil {
			opts.ErrorLog(err)
		}
		w.Header().Set("Content-Type", textContentType)
		w.Header().Add("Vary", "Accept-Encoding")
		var out io.Writer = w
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			defer gz.Close()
			out = gz
		}
		bw := bufio.NewWriterSize(out, 64<<10)
		defer bw.Flush()
		enc := expfmt.NewEncoder(bw, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return
			}
		}
		_ = WriteTraffic(bw, c)
	})
}

// acceptsGzip reports whether Accept-Encoding header values accept gzip
// (RFC 9110 12.5.3): gzip (or x-gzip, or else "*") listed with a weight
// above 0. Weights between are not ranked against identity: gzip is taken
// whenever it is acceptable, as promhttp does.
func acceptsGzip(values []string) bool {
	star := false
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "x-gzip" && coding != "*" {
				continue
			}
			ok := true
			for _, p := range strings.Split(params, ";") {
				name, val, found := strings.Cut(strings.TrimSpace(p), "=")
				if found && strings.EqualFold(strings.TrimSpace(name), "q") {
					q, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					ok = err == nil && q > 0
				}
			}
			if coding == "*" {
				star = ok
				continue
			}
			return ok // an explicit gzip entry wins over "*"
		}
	}
	return star
}

// WriteTraffic writes every family's bytes, packets and flows counters in
// the text exposition format.
func WriteTraffic(w *bufio.Writer, c *core.Core) error {
	var pts []aggregate.Point
	// Every series' {labels} block, rendered once for its three samples,
	// back to back in one buffer: blocks[ends[i-1]:ends[i]].
	var blocks []byte
	var ends []int
	var num []byte
	for _, f := range metricset.Families(c) {
		pts = f.Collect(pts[:0])
		names := f.LabelNames()
		blocks, ends = blocks[:0], ends[:0]
		for i := range pts {
			blocks = appendLabelBlock(blocks, names, pts[i].Labels)
			ends = append(ends, len(blocks))
		}
		bytes, packets, flows := metricset.TrafficMetrics(f)
		for k, m := range []metricset.Metric{bytes, packets, flows} {
			w.WriteString("# HELP " + m.Name + " " + m.Help + "\n# TYPE " + m.Name + " counter\n")
			for i := range pts {
				v := pts[i].Bytes
				switch k {
				case 1:
					v = pts[i].Packets
				case 2:
					v = pts[i].Flows
				}
				w.WriteString(m.Name)
				start := 0
				if i > 0 {
					start = ends[i-1]
				}
				w.Write(blocks[start:ends[i]])
				w.WriteByte(' ')
				num = strconv.AppendUint(num[:0], v, 10)
				w.Write(num)
				w.WriteByte('\n')
			}
		}
	}
	return w.Flush()
}

// appendLabelBlock appends {name="value",...} with the text format's
// escaping.
func appendLabelBlock(b []byte, names, values []string) []byte {
	b = append(b, '{')
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, n...)
		b = append(b, `="`...)
		v := values[i]
		if strings.ContainsAny(v, "\\\"\n") {
			v = labelEscaper.Replace(v)
		}
		b = append(b, v...)
		b = append(b, '"')
	}
	return append(b, '}')
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
