// Command gen writes flowmetrics' Grafana dashboards as JSON files; run it
// with `go generate ./...` in the dashboards module.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/flowmetrics/flowmetrics/dashboards"
)

func main() {
	dir := flag.String("dir", ".", "directory to write the dashboard JSON files to")
	flag.Parse()
	for _, f := range dashboards.All() {
		b, err := f.Dashboard.JSON()
		if err != nil {
			fmt.Fprintf(os.Stderr, "gen: %s: %v\n", f.Name, err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(*dir, f.Name), b, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "gen: %v\n", err)
			os.Exit(1)
		}
	}
}
