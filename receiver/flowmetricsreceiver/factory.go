package flowmetricsreceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
)

// TypeStr is the receiver's type in collector configs.
const TypeStr = "flowmetrics"

// Stability is the receiver's stability level for metrics.
const Stability = component.StabilityLevelAlpha

// NewFactory returns the factory of the flowmetrics receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		component.MustNewType(TypeStr),
		func() component.Config { return createDefaultConfig() },
		receiver.WithMetrics(createMetrics, Stability),
	)
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	return newReceiver(set, cfg.(*Config), next)
}
