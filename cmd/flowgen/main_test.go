package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	target := pc.LocalAddr().String()
	tests := []struct {
		name    string
		args    []string
		code    int
		wantOut string
		wantErr string
	}{
		{"sends", []string{"--target", target, "--protocol", "ipfix", "--exporters", "2", "--records", "300", "--duration", "10s"}, 0, "sent 300 records", ""},
		{"datagram rate", []string{"--target", target, "--protocol", "sflow", "--records", "16", "--datagram-rate", "1000"}, 0, "sent 16 records", ""},
		{"remote refused", []string{"--target", "192.0.2.1:2055", "--records", "1"}, 1, "", "not a loopback address"},
		{"bad target", []string{"--target", "nowhere"}, 2, "", "--target"},
		{"bad protocol", []string{"--protocol", "v7"}, 2, "", "enum value must be one of"},
		{"sampled volume", []string{"--target", target, "--protocol", "v5", "--records", "30", "--sampling-rate", "100"}, 0, "x100 after sampling correction", ""},
		{"agent drops volume", []string{"--target", target, "--protocol", "sflow", "--records", "8", "--sampling-rate", "10", "--agent-drops", "1"}, 0, "x20 after sampling correction", ""},
		{"unsampled", []string{"--target", target, "--records", "30"}, 0, "(unsampled)", ""},
		{"no records", []string{"--target", target, "--records", "0"}, 2, "", "--records must be at least 1"},
		{"one host", []string{"--target", target, "--hosts", "1"}, 2, "", "--hosts must be at least 2"},
		{"no interfaces", []string{"--target", target, "--interfaces", "0"}, 2, "", "--interfaces must be at least 1"},
		{"rate 0 sampling", []string{"--target", target, "--sampling-rate", "0"}, 2, "", "--sampling-rate must be at least 1"},
		{"negative rate", []string{"--target", target, "--rate=-1"}, 2, "", "--rate must be 0"},
		{"no duration", []string{"--target", target, "--duration", "0s"}, 2, "", "--duration must be more than 0"},
		{"agent drops without sflow", []string{"--target", target, "--protocol", "v9", "--agent-drops", "3"}, 2, "", "--agent-drops applies to --protocol sflow only"},
		{"too many interfaces", []string{"--target", target, "--records", "30", "--interfaces", "65536"}, 2, "", "--interfaces must be at most 65535"},
		{"too many hosts", []string{"--target", target, "--records", "30", "--hosts", "1048577"}, 2, "", "--hosts must be at most 1048576"},
		{"batch too large", []string{"--target", target, "--records", "30", "--batch", "1025"}, 2, "", "--batch must be at most 1024"},
		{"both rates", []string{"--target", target, "--records", "30", "--rate", "100", "--datagram-rate", "10"}, 2, "", "--rate and --datagram-rate"},
		{"v5 rate too large", []string{"--target", target, "--protocol", "v5", "--records", "30", "--sampling-rate", "16384"}, 1, "", "up to 16383"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, errb.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) || !strings.Contains(errb.String(), tt.wantErr) {
				t.Fatalf("stdout %q, stderr %q; want %q / %q", out.String(), errb.String(), tt.wantOut, tt.wantErr)
			}
		})
	}
}
