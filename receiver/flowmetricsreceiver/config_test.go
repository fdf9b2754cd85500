package flowmetricsreceiver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/flowmetrics/flowmetrics/config"
)

func load(t *testing.T, id string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig()
	sub, err := cm.Sub(component.MustNewIDWithName(TypeStr, id).String())
	if id == "" {
		sub, err = cm.Sub(TypeStr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Unmarshal(cfg); err != nil {
		return nil, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestConfigStruct(t *testing.T) {
	if err := componenttest.CheckConfigStruct(createDefaultConfig()); err != nil {
		t.Fatal(err)
	}
}

func TestLoadConfig(t *testing.T) {
	def, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if def.CollectionInterval != 10*time.Second || def.AttributeStyle != AttributesSemconv || len(def.Families) != len(config.DefaultFamilies) {
		t.Errorf("defaults = %+v", def)
	}
	// As in the standalone: no families but the per-exporter totals.
	none, err := load(t, "no_families")
	if err != nil || len(none.flow().Core().Families) != 0 {
		t.Errorf("families: [] gives %v, %v; want no families", none, err)
	}
	c, err := load(t, "custom")
	if err != nil {
		t.Fatal(err)
	}
	cc, ic := c.flow().Core(), c.flow().Intake()
	switch {
	case c.CollectionInterval != 30*time.Second, c.AttributeStyle != AttributesPrometheus:
		t.Errorf("receiver keys = %+v", c)
	case len(cc.Families) != 1 || cc.Families[0].IPv4Mask != 24 || cc.Families[0].IPv6Mask != 64:
		t.Errorf("families = %+v", cc.Families)
	case cc.Options.TTL != 5*time.Minute || cc.Options.Hold != time.Minute || cc.Options.Window != 20*time.Second || cc.Options.SketchSize != 512 || cc.Options.Tombstones != 100:
		t.Errorf("series = %+v", cc.Options)
	case cc.Sampling.DefaultRate != 1 || len(cc.Sampling.Overrides) != 1 || cc.Sampling.Overrides[0].Rate != 1000:
		t.Errorf("sampling = %+v", cc.Sampling)
	case cc.MaxExporters != 64 || ic.Limits.MaxTemplates != 32 || ic.Sockets != 2 || ic.ReceiveBuffer != 8388608:
		t.Errorf("limits = %+v %+v", cc, ic)
	case len(ic.Listen) != 1 || ic.Listen[0] != "127.0.0.1:12055" || len(ic.AllowedExporters) != 1:
		t.Errorf("intake = %+v", ic)
	}
}

// TestLoadConfigInvalid maps every invalid case of testdata/config.yaml to
// the exact error; a case without an expectation fails.
func TestLoadConfigInvalid(t *testing.T) {
	tests := map[string]string{
		"invalid_interval":             "collection_interval: must be at least 100ms, got 0s",
		"invalid_interval_number":      "collection_interval: must be at least 100ms, got 10ns",
		"invalid_style":                `attribute_style: must be "semconv" or "prometheus", got "otel"`,
		"invalid_label":                `families[0] (x).labels: unknown label "colour" (known: exporter, in_if, out_if, direction, proto, src_port, dst_port, port, src_addr, dst_addr, src_as, dst_as, ip_version, src_net, dst_net, tenant, src_country, dst_country, service)`,
		"invalid_limit":                "families[0] (x): limit: must be at least 1, got 0",
		"invalid_listen":               `listen[0]: "2055" is not host:port`,
		"invalid_override":             `sampling.overrides[0].exporter: "not-an-ip" is neither an address nor a CIDR`,
		"invalid_ttl":                  "series.idle_timeout: must be positive, got -1s",
		"invalid_allowed":              `allowed_exporters[0]: "10.0.0.0/33" is neither an address nor a CIDR`,
		"invalid_listen_empty":         "listen: at least one address is required",
		"invalid_sockets":              "sockets: must be 0..256, got 1000",
		"invalid_receive_buffer":       "receive_buffer_bytes: must be 0..1073741823, got -1",
		"invalid_max_exporters":        "max_exporters: must be at least 1, got 0",
		"invalid_max_templates":        "max_templates_per_exporter: must be at least 1, got 0",
		"invalid_hold":                 "series.frozen_hold: must be positive, got 0s",
		"invalid_window":               "series.admission_window: must be positive, got -5s",
		"invalid_sketch":               "series.sketch_size: must be 1..1048576, got 0",
		"invalid_tombstones":           "series.tombstones: must be at least 1, got 0",
		"invalid_override_rate":        "sampling.overrides[0].rate: must be at least 1",
		"invalid_listen_port":          `listen[0]: "127.0.0.1:99999": the port must be a number from 0 to 65535`,
		"invalid_duplicate_family":     `families[1].name: "x" is used twice or reserved`,
		"invalid_reserved_family":      `families[0].name: "exporter" is used twice or reserved`,
		"invalid_family_name":          `families[0] (Bad-Name): name "Bad-Name": only lower-case letters, digits and _ are allowed`,
		"invalid_no_labels":            "families[0] (x): labels: at least one label is required",
		"invalid_duplicate_label":      `families[0] (x): labels: "proto" listed twice`,
		"invalid_prefix":               "families[0] (x): ipv6_prefix_length: must be 0..128, got 129",
		"invalid_hash_key":             "families[0] (x).hash_addresses: needs address_hash_key of at least 16 characters",
		"invalid_ttl_number":           `series.idle_timeout: got 600ns; a number without a unit is nanoseconds: write the unit, such as "600s"`,
		"invalid_hold_number":          `series.frozen_hold: got 120ns; a number without a unit is nanoseconds: write the unit, such as "120s"`,
		"invalid_window_number":        `series.admission_window: got 30ns; a number without a unit is nanoseconds: write the unit, such as "30s"`,
		"invalid_reload_number":        `enrich.geoip.reload_interval: got 60ns; a number without a unit is nanoseconds: write the unit, such as "60s"`,
		"invalid_snmp_interval_number": `enrich.snmp.interval: got 300ns; a number without a unit is nanoseconds: write the unit, such as "300s"`,
		"invalid_snmp_timeout_number":  `enrich.snmp.timeout: got 2ns; a number without a unit is nanoseconds: write the unit, such as "2s"`,
		"invalid_fraction":             "'' sampling.default_rate: 2.5 is not a whole number",
		"invalid_fraction_family":      "'' families[0].limit: 99.9 is not a whole number",
		// Config.Unmarshal's errors come wrapped once more by the decoder.
		"unknown_key": "decoding failed due to the following error(s):\n\n'' decoding failed due to the following error(s):\n\n'flowmetricsreceiver.Config' has invalid keys: listne",
	}
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for key := range cm.ToStringMap() {
		id := strings.TrimPrefix(key, TypeStr+"/")
		if _, ok := tests[id]; !ok && id != TypeStr && id != "custom" && id != "no_families" && id != "secrets" {
			t.Errorf("testdata case %q has no expected error", id)
		}
	}
	for id, want := range tests {
		t.Run(id, func(t *testing.T) {
			_, err := load(t, id)
			if err == nil || err.Error() != want {
				t.Fatalf("error = %v\nwant    %s", err, want)
			}
		})
	}
}

// TestSecretsAreRedacted: address_hash_key (the secret of hash_addresses)
// and the SNMP community are credentials; the Collector's print-config,
// redacted by default, and anything else that marshals the configuration
// must not show them, while the receiver still uses them.
func TestSecretsAreRedacted(t *testing.T) {
	c, err := load(t, "secrets")
	if err != nil {
		t.Fatal(err)
	}
	conf := confmap.New()
	if err := conf.Marshal(c); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"address_hash_key", "enrich::snmp::community"} {
		if got := conf.Get(key); got != "[REDACTED]" {
			t.Errorf("%s marshals as %q, want [REDACTED]", key, got)
		}
	}
	fams := c.flow().Core().Families
	if len(fams) != 1 || string(fams[0].HashKey) != "k3y-0123456789abcdef" {
		t.Errorf("families = %+v, want the key k3y-0123456789abcdef", fams)
	}
	if got := c.flow().SNMP().Community; got != "n0t-public" {
		t.Errorf("SNMP community = %q, want n0t-public", got)
	}
}
