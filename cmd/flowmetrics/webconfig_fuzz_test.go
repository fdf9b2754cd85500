package main

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzWebConfig feeds arbitrary web configuration files (TLS, basic auth,
// headers) to the same validation flowmetrics runs at start: it must return
// an error or nil, never panic.
func FuzzWebConfig(f *testing.F) {
	for _, p := range []string{"../../examples/web-config.yml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("basic_auth_users:\n  u: $2y$10$abc\n"))
	f.Add([]byte("tls_server_config:\n  cert_file: /nonexistent\n  key_file: /nonexistent\n  client_auth_type: RequireAndVerifyClientCert\n"))
	f.Add([]byte("http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = validateWebConfig(p)
	})
}
