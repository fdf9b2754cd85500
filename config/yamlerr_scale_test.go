package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestNameKeysScales: naming the keys of a document's type errors takes
// time in proportion to the document, not to errors × nodes: 80,000
// mistyped limits (a 3 MB file) took a minute to report. Four times the
// errors must take well under sixteen times as long.
func TestNameKeysScales(t *testing.T) {
	doc := func(n int) []byte {
		var b strings.Builder
		b.WriteString("families:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - name: f%d\n    labels: [exporter]\n    limit: many\n", i)
		}
		return []byte(b.String())
	}
	parse := func(n int) time.Duration {
		b := doc(n)
		best := time.Duration(1 << 62)
		for range 2 {
			start := time.Now()
			_, err := Parse(b)
			best = min(best, time.Since(start))
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("line %d: families[%d].limit: cannot unmarshal", 3*n+1, n-1)) {
				t.Fatalf("last error not named: %.300v", err)
			}
		}
		return best
	}
	small, large := parse(4000), parse(16000)
	if large > 8*small {
		t.Fatalf("4000 type errors took %v, 16000 took %v: more than linear", small, large)
	}
}
