package main

import (
	"io"
	"net/http"
	"regexp"
	"testing"
)

// TestLandingPageLinksWork follows every link of the landing page to a path
// on the exporter itself: none may lead to a 404 (exporter-toolkit's page
// links to /debug/pprof unless told there is no profiling).
func TestLandingPageLinksWork(t *testing.T) {
	in := start(t)
	resp, err := http.Get(in.web + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	links := regexp.MustCompile(`href="(/[^"]*)"`).FindAllStringSubmatch(string(body), -1)
	if len(links) == 0 {
		t.Fatalf("no local links on the landing page:\n%s", body)
	}
	for _, l := range links {
		resp, err := http.Get(in.web + l[1])
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("landing page links to %s: status %d", l[1], resp.StatusCode)
		}
	}
}
