package testkit

import (
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is a parsed Prometheus text exposition, by metric name.
type Metrics map[string]*dto.MetricFamily

// scrapeClient bounds a scrape: a server that accepts the connection and
// never answers fails the scrape (and the test polling with it) with a
// timeout instead of hanging it until go test's own deadline.
var scrapeClient = &http.Client{Timeout: ScrapeTimeout}

// ScrapeTimeout is how long Scrape waits for a whole answer.
const ScrapeTimeout = 10 * time.Second

// Scrape fetches and parses a Prometheus text endpoint, giving up after
// ScrapeTimeout.
func Scrape(url string) (Metrics, error) {
	resp, err := scrapeClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("testkit: scrape %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("testkit: parsing %s: %w", url, err)
	}
	return mfs, nil
}

// Value returns a counter's, gauge's or untyped sample's value.
func Value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// Labels returns a sample's labels as a map.
func Labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.Label {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// Sum adds the samples of a metric whose labels include all of match.
func (ms Metrics) Sum(name string, match map[string]string) float64 {
	var s float64
	for _, m := range ms[name].GetMetric() {
		ls := Labels(m)
		ok := true
		for k, v := range match {
			if ls[k] != v {
				ok = false
			}
		}
		if ok {
			s += Value(m)
		}
	}
	return s
}

// By sums a metric's samples grouped by one label.
func (ms Metrics) By(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range ms[name].GetMetric() {
		out[Labels(m)[label]] += Value(m)
	}
	return out
}

// WaitReady polls url (a /-/ready endpoint) until it answers 200 OK or
// timeout passes; it returns the last error then.
func WaitReady(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
