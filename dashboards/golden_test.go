package dashboards

import (
	"bytes"
	"os"
	"testing"
)

// TestGolden holds the committed JSON equal to the generator's output: edit
// defs.go and run `go generate ./...`, never the JSON.
func TestGolden(t *testing.T) {
	for _, f := range All() {
		want, err := f.Dashboard.JSON()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f.Name)
		if err != nil {
			t.Fatalf("%v (run `go generate ./...` in dashboards/)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's output: run `go generate ./...` in dashboards/", f.Name)
		}
	}
	// No stray dashboards either.
	names, _ := os.ReadDir(".")
	known := map[string]bool{}
	for _, f := range All() {
		known[f.Name] = true
	}
	for _, n := range names {
		if !n.IsDir() && len(n.Name()) > 5 && n.Name()[len(n.Name())-5:] == ".json" && !known[n.Name()] {
			t.Errorf("%s is not produced by the generator", n.Name())
		}
	}
}
