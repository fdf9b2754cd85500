package config

import (
	"fmt"
	"net/netip"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/flowmetrics/flowmetrics/processor/enrich"
	"github.com/flowmetrics/flowmetrics/receiver/snmp"
)

// EnrichConfig adds names to flows: interfaces, networks, AS numbers and
// countries, services.
type EnrichConfig struct {
	// Interfaces are static interface names, descriptions and speeds; they
	// win over what SNMP returns, field by field.
	Interfaces []InterfaceConfig `yaml:"interfaces" mapstructure:"interfaces"`
	// SNMP polls exporters' IF-MIB for interface names, aliases and speeds.
	SNMP SNMPConfig `yaml:"snmp" mapstructure:"snmp"`
	// Networks map prefixes to labels; the most specific prefix wins.
	// Entries here win over networks_file for the same prefix.
	Networks []NetworkConfig `yaml:"networks" mapstructure:"networks"`
	// NetworksFile is a CSV file of networks (header line: prefix and any
	// of name, tenant, role; quoted fields; UTF-8, with or without a byte
	// order mark), read at start and at every reload.
	NetworksFile string `yaml:"networks_file" mapstructure:"networks_file"`
	// ClassifyDirection sets the direction of flows whose exporter states
	// none from the networks: internal to internal is "internal", external
	// to internal "ingress", internal to external "egress".
	ClassifyDirection bool `yaml:"classify_direction" mapstructure:"classify_direction"`
	// GeoIP names MaxMind-format databases for AS numbers and countries.
	GeoIP GeoIPConfig `yaml:"geoip" mapstructure:"geoip"`
	// Services add to or override the built-in port names.
	Services []ServiceConfig `yaml:"services" mapstructure:"services"`
	// EphemeralPortMin starts the port range whose unnamed ports are
	// grouped as service "ephemeral"; 0 disables the grouping.
	EphemeralPortMin int `yaml:"ephemeral_port_min" mapstructure:"ephemeral_port_min"`
}

// InterfaceConfig names one interface of an exporter.
type InterfaceConfig struct {
	// Exporter is the exporter's address.
	Exporter string `yaml:"exporter" mapstructure:"exporter"`
	// IfIndex is the interface's SNMP index, as flow records carry it.
	IfIndex uint32 `yaml:"if_index" mapstructure:"if_index"`
	// Name is the interface name (ifName).
	Name string `yaml:"name" mapstructure:"name"`
	// Alias is its description (ifAlias).
	Alias string `yaml:"alias" mapstructure:"alias"`
	// SpeedBps is its speed in bits per second.
	SpeedBps uint64 `yaml:"speed_bps" mapstructure:"speed_bps"`
}

// SNMPConfig configures the IF-MIB poller.
type SNMPConfig struct {
	// Exporters lists the addresses or CIDRs of exporters to poll, once
	// they have sent flows; empty disables polling.
	Exporters []string `yaml:"exporters" mapstructure:"exporters"`
	// Port is the agents' UDP port.
	Port int `yaml:"port" mapstructure:"port"`
	// Community is the SNMP v1/v2c community: a password, opaque like
	// AddressHashKey.
	Community configopaque.String `yaml:"community" mapstructure:"community"`
	// Version is "1" or "2c".
	Version string `yaml:"version" mapstructure:"version"`
	// Interval is how often each exporter is polled.
	Interval time.Duration `yaml:"interval" mapstructure:"interval"`
	// Timeout bounds each request; Retries is the number of retries.
	Timeout time.Duration `yaml:"timeout" mapstructure:"timeout"`
	Retries int           `yaml:"retries" mapstructure:"retries"`
	// Concurrency is how many exporters are polled at once, so agents
	// that do not answer delay the others by at most one slot each.
	Concurrency int `yaml:"concurrency" mapstructure:"concurrency"`
}

// NetworkConfig maps one prefix to labels.
type NetworkConfig struct {
	// Prefix is a CIDR.
	Prefix string `yaml:"prefix" mapstructure:"prefix"`
	// Name is the src_net/dst_net value; empty uses the prefix.
	Name string `yaml:"name" mapstructure:"name"`
	// Tenant is the tenant value.
	Tenant string `yaml:"tenant" mapstructure:"tenant"`
	// Role is "internal" (default) or "external".
	Role string `yaml:"role" mapstructure:"role"`
}

// network converts n (an invalid prefix is left zero); an IPv4-mapped
// prefix becomes the IPv4 prefix it covers.
func (n NetworkConfig) network() enrich.Network {
	p, err := netip.ParsePrefix(n.Prefix)
	if err == nil {
		p = enrich.UnmapPrefix(p)
	}
	return enrich.Network{Prefix: p, Name: n.Name, Tenant: n.Tenant, Role: n.Role}
}

// GeoIPConfig names the mmdb databases.
type GeoIPConfig struct {
	// ASNDatabase is a GeoLite2-ASN style mmdb; AS numbers are looked up
	// for flows that carry none.
	ASNDatabase string `yaml:"asn_database" mapstructure:"asn_database"`
	// CountryDatabase is a GeoLite2-Country or -City style mmdb.
	CountryDatabase string `yaml:"country_database" mapstructure:"country_database"`
	// ReloadInterval is how often the files are checked for changes.
	ReloadInterval time.Duration `yaml:"reload_interval" mapstructure:"reload_interval"`
}

// ServiceConfig names a port.
type ServiceConfig struct {
	// Port is 1..65535.
	Port int `yaml:"port" mapstructure:"port"`
	// Proto is "tcp", "udp" or empty for both.
	Proto string `yaml:"proto" mapstructure:"proto"`
	// Name is the service label value.
	Name string `yaml:"name" mapstructure:"name"`
}

// defaultEnrich is the enrichment part of Default.
func defaultEnrich() EnrichConfig {
	return EnrichConfig{
		ClassifyDirection: true,
		EphemeralPortMin:  enrich.DefaultEphemeralPortMin,
		SNMP: SNMPConfig{
			Port: 161, Community: "public", Version: "2c",
			Interval: 5 * time.Minute, Timeout: 2 * time.Second, Retries: 1,
			Concurrency: snmp.DefaultConcurrency,
		},
		GeoIP: GeoIPConfig{ReloadInterval: time.Minute},
	}
}

// validate checks the parts the core does not: addresses, files, SNMP.
func (e *EnrichConfig) validate() error {
	if e.EphemeralPortMin < 0 || e.EphemeralPortMin > 65535 {
		return fmt.Errorf("enrich.ephemeral_port_min: must be 0..65535, got %d", e.EphemeralPortMin)
	}
	// One interface listed twice would have two names at once, of which
	// one won without a word. The zone stays part of the exporter: the
	// intake tracks fe80::1 on two links as two exporters, and the static
	// table is keyed by the zoned address.
	type ifKey struct {
		exporter netip.Addr
		index    uint32
	}
	listed := map[ifKey]int{}
	for i, itf := range e.Interfaces {
		a, err := netip.ParseAddr(itf.Exporter)
		if err != nil {
			return fmt.Errorf("enrich.interfaces[%d].exporter: %q is not an address", i, itf.Exporter)
		}
		k := ifKey{a.Unmap(), itf.IfIndex}
		if j, ok := listed[k]; ok {
			return fmt.Errorf("enrich.interfaces[%d]: exporter %s if_index %d is enrich.interfaces[%d] again", i, k.exporter, k.index, j)
		}
		listed[k] = i
	}
	// Inline networks are checked here, with their own index: the core
	// sees them after the networks file's.
	for i, n := range e.Networks {
		if _, err := netip.ParsePrefix(n.Prefix); err != nil {
			return fmt.Errorf("enrich.networks[%d].prefix: %q is not a CIDR", i, n.Prefix)
		}
		if err := n.network().Validate(); err != nil {
			return fmt.Errorf("enrich.networks[%d].%w", i, err)
		}
	}
	if e.NetworksFile != "" {
		if _, err := enrich.ReadNetworksFile(e.NetworksFile); err != nil {
			return fmt.Errorf("enrich.networks_file: %w", err)
		}
	}
	for i, s := range e.Services {
		if s.Port < 1 || s.Port > 65535 {
			return fmt.Errorf("enrich.services[%d].port: must be 1..65535, got %d", i, s.Port)
		}
	}
	if p := e.GeoIP.ASNDatabase; p != "" {
		if err := enrich.CheckDatabase(p); err != nil {
			return fmt.Errorf("enrich.geoip.asn_database: %w", err)
		}
	}
	if p := e.GeoIP.CountryDatabase; p != "" {
		if err := enrich.CheckDatabase(p); err != nil {
			return fmt.Errorf("enrich.geoip.country_database: %w", err)
		}
	}
	if e.GeoIP.ReloadInterval <= 0 {
		return fmt.Errorf("enrich.geoip.reload_interval: must be positive, got %s", e.GeoIP.ReloadInterval)
	}
	for i, a := range e.SNMP.Exporters {
		if _, err := parsePrefix(a); err != nil {
			return fmt.Errorf("enrich.snmp.exporters[%d]: %w", i, err)
		}
	}
	if err := e.snmpConfig().Validate(); err != nil {
		return fmt.Errorf("enrich.snmp.%w", err)
	}
	return nil
}

// core returns the core's enrichment configuration; e must be valid. The
// networks file is read again (its errors were reported by Validate; if it
// became unreadable since, only the inline networks are used and the error
// is returned).
func (e *EnrichConfig) core() (enrich.Config, error) {
	ec := enrich.Config{
		ClassifyDirection: e.ClassifyDirection,
		ASNDatabase:       e.GeoIP.ASNDatabase,
		CountryDatabase:   e.GeoIP.CountryDatabase,
		EphemeralPortMin:  uint16(e.EphemeralPortMin),
	}
	var err error
	if e.NetworksFile != "" {
		var nets []enrich.Network
		if nets, err = enrich.ReadNetworksFile(e.NetworksFile); err == nil {
			ec.Networks = nets
		} else {
			err = fmt.Errorf("enrich.networks_file: %w", err)
		}
	}
	for _, n := range e.Networks {
		ec.Networks = append(ec.Networks, n.network())
	}
	for _, i := range e.Interfaces {
		a, _ := netip.ParseAddr(i.Exporter)
		ec.Interfaces = append(ec.Interfaces, enrich.Interface{Exporter: a.Unmap(), Index: i.IfIndex, Name: i.Name, Alias: i.Alias, Speed: i.SpeedBps})
	}
	for _, s := range e.Services {
		ec.Services = append(ec.Services, enrich.ServiceName{Port: uint16(s.Port), Proto: s.Proto, Name: s.Name})
	}
	return ec, err
}

// snmpConfig converts the SNMP settings; invalid prefixes are left out
// (validate reports them).
func (e *EnrichConfig) snmpConfig() snmp.Config {
	sc := snmp.Config{
		Port: e.SNMP.Port, Community: string(e.SNMP.Community), Version: e.SNMP.Version,
		Interval: e.SNMP.Interval, Timeout: e.SNMP.Timeout, Retries: e.SNMP.Retries,
		Concurrency: e.SNMP.Concurrency,
	}
	for _, s := range e.SNMP.Exporters {
		if p, err := parsePrefix(s); err == nil {
			sc.Exporters = append(sc.Exporters, p)
		}
	}
	return sc
}

// SNMP returns the SNMP poller's configuration; c must be valid.
func (c *Config) SNMP() snmp.Config { return c.Enrich.snmpConfig() }
