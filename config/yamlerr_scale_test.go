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
// errors must take well under sixteen times as long. Only the first
// maxYAMLErrors are listed; the rest are counted in one line.
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
			// The first maxYAMLErrors are named, the rest counted.
			last := maxYAMLErrors - 1
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("line %d: families[%d].limit: cannot unmarshal", 3*last+4, last)) {
				t.Fatalf("error %d not named: %.300v", last, err)
			}
			if msg := err.Error(); strings.Contains(msg, fmt.Sprintf("families[%d]", last+1)) ||
				!strings.HasSuffix(msg, fmt.Sprintf("and %d more errors like these", n-maxYAMLErrors)) {
				t.Fatalf("errors past the first %d not counted: ...%.300s", maxYAMLErrors, msg[max(0, len(msg)-300):])
			}
		}
		return best
	}
	small, large := parse(4000), parse(16000)
	if large > 8*small {
		t.Fatalf("4000 type errors took %v, 16000 took %v: more than linear", small, large)
	}
}
