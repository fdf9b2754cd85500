package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

// TestReloadAfterStopRefused: a POST /-/reload that came while SIGTERM's
// drain held the sockets was served once the drain ended. With changed
// listen addresses it bound new sockets that nothing drained and that
// held the ports against the instance replacing this one, and it answered
// "configuration reloaded" from a process on its way out. Once stop has
// run, a reload must be refused (503 over HTTP), bind nothing and change
// nothing.
func TestReloadAfterStopRefused(t *testing.T) {
	for _, via := range []string{"reload", "POST /-/reload"} {
		t.Run(via, func(t *testing.T) {
			dir := t.TempDir()
			cfgPath := filepath.Join(dir, "flowmetrics.yml")
			writeFile(t, cfgPath, "listen: [\""+testkit.FreePort(t, "udp")+"\"]\nsockets: 1\nfamilies: [{name: proto, labels: [exporter, proto], limit: 10}]\n")
			log := &testkit.SyncBuffer{}
			a := newApp(slog.New(slog.NewTextHandler(log, nil)), cfgPath, nil)
			if err := a.start(); err != nil {
				t.Fatal(err)
			}
			a.stop()

			newAddr := testkit.FreePort(t, "udp")
			writeFile(t, cfgPath, "listen: [\""+newAddr+"\"]\nsockets: 1\nfamilies: [{name: other_proto, labels: [exporter, proto], limit: 10}]\n")
			switch via {
			case "reload":
				if err := a.reload(); err != errStopping {
					t.Errorf("reload after stop: %v, want %v", err, errStopping)
				}
			default:
				srv := httptest.NewServer(http.HandlerFunc(a.reloadHandler))
				defer srv.Close()
				resp, err := http.Post(srv.URL, "", nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable || strings.TrimSpace(string(body)) != errStopping.Error() {
					t.Errorf("POST /-/reload after stop: %d %q, want 503 %q", resp.StatusCode, body, errStopping)
				}
			}
			// Nothing holds the new address: the next instance can bind it.
			c, err := net.ListenPacket("udp", newAddr)
			if err != nil {
				t.Errorf("the refused reload bound %s: %v", newAddr, err)
			} else {
				c.Close()
			}
			if got := familyNames(a); !slices.Equal(got, []string{"proto"}) {
				t.Errorf("families after a refused reload: %v, want [proto]", got)
			}
			if strings.Contains(log.String(), "configuration reloaded") {
				t.Errorf("the log says the configuration was reloaded after stop:\n%s", log)
			}
			a.stop() // a second stop is harmless
		})
	}
}
