package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// validateWebConfig checks a --web.config.file as exporter-toolkit does at
// start, and first that every basic_auth_users entry has the form of a
// bcrypt hash, naming the user. exporter-toolkit refuses a hash too short
// without saying whose it is, and takes one too long or with characters
// outside bcrypt's alphabet (the placeholder of examples/web-config.yml,
// a hash pasted with a character too many): then every request is refused
// with 401 and nothing in the log says why.
func validateWebConfig(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return web.Validate(path) // its own words for a missing file
	}
	var c struct {
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if yaml.Unmarshal(b, &c) == nil {
		names := make([]string, 0, len(c.Users))
		for name := range c.Users {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if err := checkBcryptHash(c.Users[name]); err != nil {
				return fmt.Errorf("basic_auth_users.%s: %w (generate one with: htpasswd -nBC 12 \"\" | tr -d ':\\n')", name, err)
			}
		}
	}
	return web.Validate(path)
}

// bcryptTail is the length of a bcrypt hash after its "$2y$12$" prefix:
// 22 characters of salt and 31 of hash.
const bcryptTail = 53

// bcryptAlphabet is bcrypt's base64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// checkBcryptHash reports whether h has the form of a bcrypt hash, without
// computing one (that would take a quarter of a second at cost 12).
func checkBcryptHash(h string) error {
	const want = "not a bcrypt hash"
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return fmt.Errorf("%s: %w", want, err)
	}
	prefix := len("$2y$12$")
	if h[2] == '$' { // "$2$12$": no minor version
		prefix--
	}
	if len(h) != prefix+bcryptTail {
		return fmt.Errorf("%s: %d characters, want %d", want, len(h), prefix+bcryptTail)
	}
	if i := strings.IndexFunc(h[prefix:], func(r rune) bool { return !strings.ContainsRune(bcryptAlphabet, r) }); i >= 0 {
		return fmt.Errorf("%s: %q at offset %d", want, h[prefix+i], prefix+i)
	}
	return nil
}
