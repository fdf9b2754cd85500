package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestListenFlagErrorsNameTheFlag: an address given with
// --flow.listen-address is checked like the configuration's listen, but the
// error must name the flag the user typed, not listen[0], a key of a file
// that may not even exist.
func TestListenFlagErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--flow.listen-address=bogus"}, `--flow.listen-address[0]: \"bogus\" is not host:port`},
		{[]string{"--flow.listen-address=127.0.0.1:2055", "--flow.listen-address=127.0.0.1:99999"},
			`--flow.listen-address[1]: \"127.0.0.1:99999\": the port must be a number from 0 to 65535`},
		{[]string{"--flow.listen-address=:2055", "--flow.listen-address=:2055"}, `--flow.listen-address[1]: \":2055\" is --flow.listen-address[0] again`},
	} {
		var stderr bytes.Buffer
		code := run(append([]string{"--config.check"}, tc.args...), &stderr)
		if code != 1 {
			t.Errorf("%v: exit code %d, want 1", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: log\n%s\nwant it to contain %s", tc.args, stderr.String(), tc.want)
		}
	}
}
