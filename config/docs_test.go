package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestREADMEListsEveryKey keeps the README's configuration reference
// complete: every key of Config is named there, a nested key by its dotted
// path (or by `.leaf` after its parent's path, as in "`enrich.snmp.port`,
// `.community`"), and the fields of list items inside the `{...}` that
// shows an item (as in "`{exporter: <addr>, rate: N}`").
func TestREADMEListsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	keys := yamlKeys(reflect.TypeFor[Config](), "")
	if len(keys) < 30 {
		t.Fatalf("found only %d keys: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !documentedKey(readme, k) {
			t.Errorf("configuration key %s is not in README.md", k.path)
		}
	}
}

// yamlKey is a configuration key: its dotted path, or for a field of a
// list item the list's path and the field's name.
type yamlKey struct {
	path       string
	list, item string
}

func yamlKeys(typ reflect.Type, prefix string) []yamlKey {
	var out []yamlKey
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		ft := f.Type
		if ft.Kind() == reflect.Struct && ft.PkgPath() == typ.PkgPath() {
			out = append(out, yamlKeys(ft, path+".")...) // a section: its keys
			continue
		}
		out = append(out, yamlKey{path: path})
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			for g := range ft.Elem().Fields() {
				if item, _, _ := strings.Cut(g.Tag.Get("yaml"), ","); item != "" && item != "-" {
					out = append(out, yamlKey{path: path + "[]." + item, list: path, item: item})
				}
			}
		}
	}
	return out
}

func documentedKey(readme string, k yamlKey) bool {
	if k.list != "" {
		// The README shows an item as `{a, b, c}` or `{a: ..., b: ...}`
		// in the list's row or in its own sentence ("A family is {...}").
		for _, braces := range strings.Split(readme, "`{")[1:] {
			body, _, _ := strings.Cut(braces, "}`")
			for _, part := range strings.Split(body, ",") {
				name, _, _ := strings.Cut(strings.TrimSpace(part), ":")
				if name == k.item {
					return true
				}
			}
		}
		return false
	}
	if strings.Contains(readme, "`"+k.path+"`") {
		return true
	}
	parent, leaf, ok := cutLast(k.path, ".")
	return ok && strings.Contains(readme, "`"+parent+".") && strings.Contains(readme, "`."+leaf+"`")
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
