package main

import (
	"context"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestWebListenAddressChecked: a --web.listen-address that can never be
// listened on ("9155" without its colon, a port past 65535, the same
// address twice) passed --config.check, and a start bound the flow
// sockets, then failed with status 1, which the systemd unit restarts
// every 5 s. It must fail --config.check (1) and a start as an invalid
// configuration (exitConfig), naming the flag; valid forms still pass.
func TestWebListenAddressChecked(t *testing.T) {
	for _, tc := range []struct {
		addrs []string
		want  string // "" for valid
	}{
		{[]string{"9155"}, `--web.listen-address[0]: \"9155\" is not host:port (for every interface, :port)`},
		{[]string{"127.0.0.1:99999"}, `--web.listen-address[0]: \"127.0.0.1:99999\": the port must be a number from 0 to 65535 or a service name`},
		{[]string{"127.0.0.1:nosuchservice"}, `--web.listen-address[0]: \"127.0.0.1:nosuchservice\": the port must be`},
		{[]string{"127.0.0.1:19155", "127.0.0.1:19155"}, `--web.listen-address[1]: \"127.0.0.1:19155\" is --web.listen-address[0] again`},
		{[]string{":19155", "127.0.0.1:19156", ":19155"}, `--web.listen-address[2]: \":19155\" is --web.listen-address[0] again`},
		{[]string{"vsock://:port"}, `--web.listen-address[0]: \"vsock://:port\" is not vsock://[cid]:port`},
		{[]string{"vsock://:4294967296"}, `--web.listen-address[0]: \"vsock://:4294967296\": the vsock port must be a number`},
		{[]string{":9155"}, ""},
		{[]string{"[::1]:9155", "127.0.0.1:9155"}, ""},
		{[]string{"127.0.0.1:0", "127.0.0.1:0"}, ""},
		{[]string{"localhost:http"}, ""},
		{[]string{"vsock://:9155"}, ""},
	} {
		var flags []string
		for _, a := range tc.addrs {
			flags = append(flags, "--web.listen-address="+a)
		}
		out, code := runBinary(t, append([]string{"--config.check"}, flags...)...)
		if tc.want == "" {
			if code != 0 {
				t.Errorf("--config.check %q: exit %d, want 0; output:\n%s", flags, code, out)
			}
			continue
		}
		if code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("--config.check %q: exit %d, want 1 and %s; output:\n%s", flags, code, tc.want, out)
		}
		out, code = runBinary(t, append([]string{"--flow.listen-address=127.0.0.1:0"}, flags...)...)
		if code != exitConfig || !strings.Contains(out, tc.want) {
			t.Errorf("start with %q: exit %d, want %d and %s; output:\n%s", flags, code, exitConfig, tc.want, out)
		}
		if strings.Contains(out, "listening for flows") {
			t.Errorf("start with %q bound the flow sockets before refusing the web address:\n%s", flags, out)
		}
	}
}

// runBinary runs flowmetrics with args for at most 10 s and returns its
// output and exit status (-1 if it did not exit by itself).
func runBinary(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
	if err == nil {
		return string(out), 0
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() >= 0 {
		return string(out), ee.ExitCode()
	}
	return string(out), -1
}

// TestWebListenWildcardBesideAnother: on Linux an address of every
// interface (":9155", "0.0.0.0:9155", "[::]:9155", all of which Go listens
// on as [::] for IPv4 and IPv6) and any other address on the same port can
// never both be listened on: the second fails with "address already in
// use" after the flow sockets are bound, status 1, which the systemd unit
// restarts every 5 s. They must be refused as an invalid flag; another
// port, or two specific addresses, are fine.
func TestWebListenWildcardBesideAnother(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the bind rule checked is Linux's")
	}
	for _, tc := range []struct {
		addrs []string
		want  string // "" for valid
	}{
		{[]string{":9155", "127.0.0.1:9155"}, `--web.listen-address[1]: "127.0.0.1:9155" and --web.listen-address[0] ":9155" cannot both listen on port 9155 (one is every interface's)`},
		{[]string{"127.0.0.1:9155", "0.0.0.0:9155"}, `--web.listen-address[1]: "0.0.0.0:9155" and --web.listen-address[0] "127.0.0.1:9155" cannot both listen on port 9155 (one is every interface's)`},
		{[]string{"[::]:9155", "[::1]:9155"}, `--web.listen-address[1]: "[::1]:9155" and --web.listen-address[0] "[::]:9155" cannot both listen on port 9155 (one is every interface's)`},
		{[]string{"0.0.0.0:http", "[::]:80"}, `--web.listen-address[1]: "[::]:80" and --web.listen-address[0] "0.0.0.0:http" cannot both listen on port 80 (one is every interface's)`},
		{[]string{"localhost:9155", ":9155"}, `--web.listen-address[1]: ":9155" and --web.listen-address[0] "localhost:9155" cannot both listen on port 9155 (one is every interface's)`},
		{[]string{":9155", "127.0.0.1:9156"}, ""},
		{[]string{"127.0.0.1:9155", "[::1]:9155"}, ""},
		{[]string{":0", "127.0.0.1:0"}, ""},
		{[]string{":9155", "vsock://:9155"}, ""},
	} {
		err := validateWebListen(tc.addrs)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("validateWebListen(%q) = %q, want %q", tc.addrs, got, tc.want)
		}
	}
}
