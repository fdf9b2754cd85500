package flowmetricsreceiver

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/confmap"

	"github.com/flowmetrics/flowmetrics/config"
)

// Attribute styles.
const (
	// AttributesSemconv names attributes after OpenTelemetry semantic
	// conventions where one exists (source.address, network.transport...).
	AttributesSemconv = "semconv"
	// AttributesPrometheus uses the standalone exporter's label names
	// (src_addr, proto...), so dashboards and alerts written for it work
	// unchanged behind the Collector's Prometheus exporter.
	AttributesPrometheus = "prometheus"
)

// FlowConfig is the flow pipeline's configuration, shared with the
// standalone exporter: same keys, same defaults, same validation. It is a
// defined type (not config.Config itself) so that the Collector validates it
// once, through Config.Validate, with errors naming the keys as users write
// them.
type FlowConfig config.Config

// Config is the receiver's configuration: the flow pipeline's settings plus
// how often metrics are emitted.
type Config struct {
	FlowConfig `mapstructure:",squash"`

	// CollectionInterval is how often the receiver emits its metrics.
	CollectionInterval time.Duration `mapstructure:"collection_interval"`

	// AttributeStyle chooses attribute names: "semconv" (default) or
	// "prometheus" (the standalone exporter's label names).
	AttributeStyle string `mapstructure:"attribute_style"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Unmarshal decodes conf into c, refusing a fractional number for an
// integer key rather than letting the decoder truncate it ("default_rate:
// 2.5" would correct by 2).
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	if err := config.WholeNumbers(conf.ToStringMap()); err != nil {
		return err
	}
	return conf.Unmarshal(c)
}

// Validate reports the first problem, naming the key. It does not change c.
func (c *Config) Validate() error {
	if c.CollectionInterval < 100*time.Millisecond {
		// A bare number is nanoseconds: "10" would emit every 10 ns.
		return fmt.Errorf("collection_interval: must be at least 100ms, got %s", c.CollectionInterval)
	}
	switch c.AttributeStyle {
	case AttributesSemconv, AttributesPrometheus:
	default:
		return fmt.Errorf("attribute_style: must be %q or %q, got %q", AttributesSemconv, AttributesPrometheus, c.AttributeStyle)
	}
	fc := c.flow()
	return fc.Validate()
}

// flow returns the shared flow configuration.
func (c *Config) flow() *config.Config {
	fc := config.Config(c.FlowConfig)
	return &fc
}

// defaultCollectionInterval is how often metrics are emitted by default.
const defaultCollectionInterval = 10 * time.Second

func createDefaultConfig() *Config {
	return &Config{
		FlowConfig:         FlowConfig(config.Default()),
		CollectionInterval: defaultCollectionInterval,
		AttributeStyle:     AttributesSemconv,
	}
}
