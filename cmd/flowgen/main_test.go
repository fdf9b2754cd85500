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
