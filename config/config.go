// Package config is the flow part of flowmetrics' configuration, shared by
// the standalone exporter (YAML, --config.file) and the OpenTelemetry
// receiver (mapstructure, embedded with ",squash"). One schema, one set of
// defaults, one Validate: the invalid-config fixtures cover both fronts.
//
// Validate never mutates; defaults live in Default.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"gopkg.in/yaml.v3"

	"github.com/flowmetrics/flowmetrics/processor/aggregate"
	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/processor/sampling"
	"github.com/flowmetrics/flowmetrics/receiver/decode"
	"github.com/flowmetrics/flowmetrics/receiver/intake"
)

// Config is the flow pipeline's configuration.
type Config struct {
	// Listen is the list of UDP addresses to receive NetFlow v5/v9, IPFIX
	// and sFlow on; every protocol is accepted on every address.
	Listen []string `yaml:"listen" mapstructure:"listen"`
	// Sockets is the number of SO_REUSEPORT sockets per address; 0 means
	// one per CPU.
	Sockets int `yaml:"sockets" mapstructure:"sockets"`
	// ReceiveBufferBytes is the socket receive buffer to request; 0 keeps
	// the system default.
	ReceiveBufferBytes int `yaml:"receive_buffer_bytes" mapstructure:"receive_buffer_bytes"`
	// AllowedExporters lists the addresses or CIDRs datagrams are accepted
	// from; empty accepts all.
	AllowedExporters []string `yaml:"allowed_exporters" mapstructure:"allowed_exporters"`
	// MaxExporters bounds the exporters tracked (health figures and the
	// decoder state that hangs off them, and "other" series per family).
	MaxExporters int `yaml:"max_exporters" mapstructure:"max_exporters"`
	// MaxTemplatesPerExporter bounds the NetFlow v9/IPFIX templates kept per
	// exporter.
	MaxTemplatesPerExporter int `yaml:"max_templates_per_exporter" mapstructure:"max_templates_per_exporter"`
	// Series tunes expiry and admission of series in every family.
	Series SeriesConfig `yaml:"series" mapstructure:"series"`
	// Sampling sets the default sampling rate and per-exporter overrides.
	Sampling SamplingConfig `yaml:"sampling" mapstructure:"sampling"`
	// Families are the traffic metric families. Setting it replaces the
	// defaults.
	Families []FamilyConfig `yaml:"families" mapstructure:"families"`
	// AddressHashKey is the secret for families with hash_addresses; keep
	// it stable, or the hashed label values change. Opaque, so that the
	// Collector's print-config (redacted by default) does not show it.
	AddressHashKey configopaque.String `yaml:"address_hash_key" mapstructure:"address_hash_key"`
	// Enrich adds interface names, network, tenant, AS, country and service
	// labels.
	Enrich EnrichConfig `yaml:"enrich" mapstructure:"enrich"`
}

// SeriesConfig tunes series expiry and admission.
type SeriesConfig struct {
	// IdleTimeout freezes a series that saw no traffic for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout" mapstructure:"idle_timeout"`
	// FrozenHold keeps a frozen series exposed this long (at least two
	// scrape intervals) before dropping it.
	FrozenHold time.Duration `yaml:"frozen_hold" mapstructure:"frozen_hold"`
	// AdmissionWindow is how often heavier keys may displace light series.
	AdmissionWindow time.Duration `yaml:"admission_window" mapstructure:"admission_window"`
	// SketchSize is the number of heavy-hitter counters per family
	// (1..MaxSketchSize).
	SketchSize int `yaml:"sketch_size" mapstructure:"sketch_size"`
	// Tombstones is the number of dropped series per family remembered so
	// that they resume their values when they come back.
	Tombstones int `yaml:"tombstones" mapstructure:"tombstones"`
}

// MaxReceiveBufferBytes is the largest receive buffer Linux grants
// (INT_MAX/2). The size is passed to setsockopt as a C int: a larger value
// would wrap (3000000000 became a negative request and a 2 KiB buffer,
// reported as a cap by net.core.rmem_max).
const MaxReceiveBufferBytes = 1<<30 - 1

// MaxSketchSize bounds series.sketch_size. Each family (and the exporter
// totals) allocates its sketch up front, about 70 bytes per counter: at this
// bound some 70 MiB per family. A larger value would pass a check and then
// fail at start, or kill the running process on reload, allocating gigabytes.
const MaxSketchSize = 1 << 20

// SamplingConfig is the operator's say on sampling rates.
type SamplingConfig struct {
	// DefaultRate applies when the exporter states no rate; 0 leaves such
	// records unresolved (counted 1:1 and reported).
	DefaultRate uint32 `yaml:"default_rate" mapstructure:"default_rate"`
	// Overrides pin the rate of exporters, winning over what they state.
	Overrides []OverrideConfig `yaml:"overrides" mapstructure:"overrides"`
}

// OverrideConfig pins one exporter's (or network's) sampling rate.
type OverrideConfig struct {
	// Exporter is an address or CIDR.
	Exporter string `yaml:"exporter" mapstructure:"exporter"`
	// Rate is N for 1:N sampling.
	Rate uint32 `yaml:"rate" mapstructure:"rate"`
}

// FamilyConfig is one traffic metric family.
type FamilyConfig struct {
	// Name gives the metric names flow_<name>_bytes_total,
	// flow_<name>_packets_total and flow_<name>_flows_total.
	Name string `yaml:"name" mapstructure:"name"`
	// Labels is the label set, from: exporter, in_if, out_if, direction,
	// proto, src_port, dst_port, port, src_addr, dst_addr, src_as, dst_as,
	// ip_version, src_net, dst_net, tenant, src_country, dst_country,
	// service.
	Labels []string `yaml:"labels" mapstructure:"labels"`
	// Limit is the most series the family holds besides "other".
	Limit int `yaml:"limit" mapstructure:"limit"`
	// IPv4PrefixLength truncates IPv4 src/dst addresses (e.g. 24); 0 or 32
	// keeps them whole.
	IPv4PrefixLength int `yaml:"ipv4_prefix_length" mapstructure:"ipv4_prefix_length"`
	// IPv6PrefixLength truncates IPv6 src/dst addresses (e.g. 64); 0 or 128
	// keeps them whole.
	IPv6PrefixLength int `yaml:"ipv6_prefix_length" mapstructure:"ipv6_prefix_length"`
	// HashAddresses replaces src_addr/dst_addr values by a keyed hash of
	// the (truncated) address; needs address_hash_key.
	HashAddresses bool `yaml:"hash_addresses" mapstructure:"hash_addresses"`
}

// DefaultFamilies are the families used when none are configured.
var DefaultFamilies = []FamilyConfig{
	{Name: "interface", Labels: []string{"exporter", "in_if", "out_if", "direction"}, Limit: 2000},
	{Name: "protocol", Labels: []string{"exporter", "proto", "ip_version"}, Limit: 200},
	{Name: "application", Labels: []string{"exporter", "proto", "port"}, Limit: 1000},
	{Name: "src_host", Labels: []string{"exporter", "src_addr"}, Limit: 1000},
	{Name: "dst_host", Labels: []string{"exporter", "dst_addr"}, Limit: 1000},
	{Name: "as_pair", Labels: []string{"exporter", "src_as", "dst_as"}, Limit: 1000},
	{Name: "service", Labels: []string{"exporter", "proto", "service"}, Limit: 500},
}

// Default returns the configuration used for every key left out.
func Default() Config {
	fams := make([]FamilyConfig, len(DefaultFamilies))
	for i, f := range DefaultFamilies {
		f.Labels = append([]string(nil), f.Labels...)
		fams[i] = f
	}
	return Config{
		Listen:                  []string{":2055", ":4739", ":6343"},
		ReceiveBufferBytes:      32 << 20,
		MaxExporters:            1024,
		MaxTemplatesPerExporter: decode.DefaultLimits.MaxTemplates,
		Series: SeriesConfig{
			IdleTimeout:     aggregate.DefaultOptions.TTL,
			FrozenHold:      aggregate.DefaultOptions.Hold,
			AdmissionWindow: aggregate.DefaultOptions.Window,
			SketchSize:      aggregate.DefaultOptions.SketchSize,
			Tombstones:      aggregate.DefaultOptions.Tombstones,
		},
		Families: fams,
		Enrich:   defaultEnrich(),
	}
}

// Load reads a YAML file over the defaults. Unknown keys are errors.
// Relative file paths in it (enrich.networks_file, enrich.geoip.*) are
// relative to the file's directory.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return parse(b, filepath.Dir(path))
}

// Parse decodes YAML over the defaults and validates the result. Relative
// file paths in it are relative to the working directory.
func Parse(b []byte) (Config, error) { return parse(b, "") }

// parse is Parse with relative file paths (enrich.networks_file and the
// geoip databases) taken relative to dir, as Prometheus does for the files
// its configuration names.
func parse(b []byte, dir string) (Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, nameKeys(b, err)
	}
	// A second document (after ---) would be ignored without a word; an
	// empty one (a trailing ---) holds nothing to ignore.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Config{}, err
		}
		if len(next.Content) > 0 && next.Content[0].Tag != "!!null" {
			return Config{}, fmt.Errorf("line %d: a second YAML document; the configuration is one document (remove the ---)", next.Content[0].Line)
		}
	}
	if err := wholeNumbers(b); err != nil {
		return Config{}, err
	}
	if dir != "" {
		for _, p := range []*string{&c.Enrich.NetworksFile, &c.Enrich.GeoIP.ASNDatabase, &c.Enrich.GeoIP.CountryDatabase} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports the first problem, naming the key.
func (c *Config) Validate() error {
	if err := ValidateListen("listen", c.Listen); err != nil {
		return err
	}
	if c.Sockets < 0 || c.Sockets > 256 {
		return fmt.Errorf("sockets: must be 0..256, got %d", c.Sockets)
	}
	if c.ReceiveBufferBytes < 0 || c.ReceiveBufferBytes > MaxReceiveBufferBytes {
		return fmt.Errorf("receive_buffer_bytes: must be 0..%d, got %d", MaxReceiveBufferBytes, c.ReceiveBufferBytes)
	}
	for i, a := range c.AllowedExporters {
		if _, err := parsePrefix(a); err != nil {
			return fmt.Errorf("allowed_exporters[%d]: %w", i, err)
		}
	}
	if c.MaxTemplatesPerExporter < 1 {
		return fmt.Errorf("max_templates_per_exporter: must be at least 1, got %d", c.MaxTemplatesPerExporter)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"series.idle_timeout", c.Series.IdleTimeout},
		{"series.frozen_hold", c.Series.FrozenHold},
		{"series.admission_window", c.Series.AdmissionWindow},
		{"enrich.geoip.reload_interval", c.Enrich.GeoIP.ReloadInterval},
		{"enrich.snmp.interval", c.Enrich.SNMP.Interval},
		{"enrich.snmp.timeout", c.Enrich.SNMP.Timeout},
	} {
		// None is meant shorter than a millisecond: such a value is a
		// number written without a unit, which the Collector's decoder
		// reads as nanoseconds ("idle_timeout: 600" would freeze every
		// series at once) where this package's YAML refuses it.
		if d.v > 0 && d.v < time.Millisecond {
			return fmt.Errorf("%s: got %s; a number without a unit is nanoseconds: write the unit, such as %q", d.key, d.v, strconv.FormatInt(d.v.Nanoseconds(), 10)+"s")
		}
	}
	s := c.Series
	switch {
	case s.IdleTimeout <= 0:
		return fmt.Errorf("series.idle_timeout: must be positive, got %s", s.IdleTimeout)
	case s.FrozenHold <= 0:
		return fmt.Errorf("series.frozen_hold: must be positive, got %s", s.FrozenHold)
	case s.AdmissionWindow <= 0:
		return fmt.Errorf("series.admission_window: must be positive, got %s", s.AdmissionWindow)
	case s.SketchSize < 1 || s.SketchSize > MaxSketchSize:
		return fmt.Errorf("series.sketch_size: must be 1..%d, got %d", MaxSketchSize, s.SketchSize)
	case s.Tombstones < 1:
		return fmt.Errorf("series.tombstones: must be at least 1, got %d", s.Tombstones)
	}
	// The same exporter (or CIDR) twice would be two rates for one
	// exporter, of which the first listed won without a word.
	overridden := map[netip.Prefix]int{}
	for i, o := range c.Sampling.Overrides {
		p, err := parsePrefix(o.Exporter)
		if err != nil {
			return fmt.Errorf("sampling.overrides[%d].exporter: %w", i, err)
		}
		if j, ok := overridden[p]; ok {
			return fmt.Errorf("sampling.overrides[%d].exporter: %s is sampling.overrides[%d] again", i, p, j)
		}
		overridden[p] = i
	}
	if err := c.Enrich.validate(); err != nil {
		return err
	}
	cc, err := c.coreConfig()
	if err != nil {
		return err
	}
	return cc.Validate()
}

// ValidateListen checks UDP listen addresses (host:port, numeric port, each
// once) given under name: the listen key, or a flag that replaces it.
func ValidateListen(name string, addrs []string) error {
	if len(addrs) == 0 {
		return fmt.Errorf("%s: at least one address is required", name)
	}
	seen := map[string]int{}
	for i, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("%s[%d]: %q is not host:port", name, i, a)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || port != strconv.FormatUint(n, 10) {
			return fmt.Errorf("%s[%d]: %q: the port must be a number from 0 to 65535", name, i, a)
		}
		key := a
		if ap, err := netip.ParseAddrPort(a); err == nil {
			key = ap.String()
		} else if host == "" {
			key = ":" + port
		}
		if j, ok := seen[key]; ok {
			return fmt.Errorf("%s[%d]: %q is %s[%d] again", name, i, a, name, j)
		}
		seen[key] = i
	}
	return nil
}

// parsePrefix accepts an address (as a full-length prefix) or a CIDR. An
// IPv4-mapped address or CIDR (::ffff:192.0.2.0/120) becomes the IPv4 one it
// covers: exporters are tracked under their plain IPv4 address, which a
// mapped prefix would never contain.
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a CIDR", s)
	}
	return enrich.UnmapPrefix(p), nil
}

func (c *Config) coreConfig() (core.Config, error) {
	cc := core.Config{
		MaxExporters: c.MaxExporters,
		Options: aggregate.Options{
			TTL: c.Series.IdleTimeout, Hold: c.Series.FrozenHold, Window: c.Series.AdmissionWindow,
			SketchSize: c.Series.SketchSize, Tombstones: c.Series.Tombstones,
		},
		Sampling: sampling.Config{DefaultRate: c.Sampling.DefaultRate},
	}
	for i, o := range c.Sampling.Overrides {
		p, _ := parsePrefix(o.Exporter)
		if o.Rate == 0 {
			return cc, fmt.Errorf("sampling.overrides[%d].rate: must be at least 1", i)
		}
		cc.Sampling.Overrides = append(cc.Sampling.Overrides, sampling.Override{Prefix: p, Rate: o.Rate})
	}
	for i, f := range c.Families {
		spec := aggregate.Spec{Name: f.Name, Limit: f.Limit, IPv4Mask: f.IPv4PrefixLength, IPv6Mask: f.IPv6PrefixLength}
		if f.HashAddresses {
			if len(c.AddressHashKey) < 16 {
				return cc, fmt.Errorf("families[%d] (%s).hash_addresses: needs address_hash_key of at least 16 characters", i, f.Name)
			}
			spec.HashKey = []byte(c.AddressHashKey)
		}
		for _, l := range f.Labels {
			lab, err := aggregate.ParseLabel(l)
			if err != nil {
				return cc, fmt.Errorf("families[%d] (%s).labels: %w", i, f.Name, err)
			}
			spec.Labels = append(spec.Labels, lab)
		}
		cc.Families = append(cc.Families, spec)
	}
	var err error
	cc.Enrich, err = c.Enrich.core()
	return cc, err
}

// Core returns the core's configuration; c must be valid.
func (c *Config) Core() core.Config {
	cc, _ := c.coreConfig()
	return cc
}

// Intake returns the sockets' configuration; c must be valid.
func (c *Config) Intake() intake.Config {
	ic := intake.Config{
		Listen:        append([]string(nil), c.Listen...),
		Sockets:       c.Sockets,
		ReceiveBuffer: c.ReceiveBufferBytes,
		Limits:        decode.Limits{MaxTemplates: c.MaxTemplatesPerExporter},
	}
	for _, a := range c.AllowedExporters {
		p, _ := parsePrefix(a)
		ic.AllowedExporters = append(ic.AllowedExporters, p)
	}
	return ic
}
