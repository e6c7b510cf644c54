package chart

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

// element is an SVG element as a reader of the chart would find it.
type element struct {
	Name  string
	Attrs map[string]string
	Text  string
}

// parse decodes svg as strict XML and returns its elements in order.
func parse(t *testing.T, svg string) []element {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	d.Strict = true
	var out []element
	var open []int
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not valid XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := element{Name: tok.Name.Local, Attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.Attrs[a.Name.Local] = a.Value
			}
			out = append(out, e)
			open = append(open, len(out)-1)
		case xml.EndElement:
			open = open[:len(open)-1]
		case xml.CharData:
			if len(open) > 0 {
				out[open[len(open)-1]].Text += string(tok)
			}
		}
	}
	return out
}

func TestSVGIsValidXMLWithEscapedNames(t *testing.T) {
	evil := `</title><script>alert("x")</script>&'`
	svg := string(SVG(Chart{
		Title: "Traffic of " + evil,
		Start: time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC), Step: 10 * time.Second,
		Lines: []Line{
			{Name: "in " + evil, Class: `in" onload="x`, Values: []float64{0, 1500, 3000, 750}},
			{Name: "out", Class: "out", Values: []float64{10, 20, 30, 40}},
		},
		Format: func(v float64) string { return strings.TrimSuffix(strings.TrimSuffix(num(v), "0"), ".") + " B/s" },
	}))
	if strings.Contains(svg, "<script") || strings.Contains(svg, "onload=") {
		t.Fatalf("markup from a name reached the SVG:\n%s", svg)
	}
	els := parse(t, svg)
	if els[0].Name != "svg" || els[0].Attrs["viewBox"] != "0 0 640 160" {
		t.Fatalf("root = %+v", els[0])
	}
	var paths, lines int
	var texts []string
	for _, e := range els {
		switch e.Name {
		case "path":
			paths++
			if strings.HasPrefix(e.Attrs["class"], "line ") {
				lines++
				if !strings.HasPrefix(e.Attrs["d"], "M") || strings.Count(e.Attrs["d"], "L") != 3 {
					t.Errorf("line path d = %q, want M and three L", e.Attrs["d"])
				}
			}
		case "text", "title":
			texts = append(texts, e.Text)
		}
	}
	if lines != 2 || paths < 4 {
		t.Fatalf("%d paths, %d lines; want an area and a line per series", paths, lines)
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"Traffic of " + evil, "in " + evil, "0 B/s", "2500 B/s", "5000 B/s", "10:00", "10:00 UTC"} {
		if !strings.Contains(all, want) {
			t.Errorf("texts lack %q: %q", want, all)
		}
	}
}

func TestSVGEmptyAndSpark(t *testing.T) {
	empty := parse(t, string(SVG(Chart{Title: "Connected homes"})))
	var said bool
	for _, e := range empty {
		said = said || e.Text == "no data yet"
	}
	if !said {
		t.Errorf("an empty chart does not say it has no data yet: %+v", empty)
	}
	spark := parse(t, string(SVG(Chart{Title: "alpha", Spark: true, Lines: []Line{{Name: "in", Class: "in", Values: []float64{3}}}})))
	for _, e := range spark {
		if e.Name == "text" {
			t.Errorf("a sparkline has a label: %+v", e)
		}
	}
	if spark[0].Attrs["width"] != "120" {
		t.Errorf("spark width = %q", spark[0].Attrs["width"])
	}
}

func TestNiceScale(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, -5: 1, 0.3: 0.5, 1: 1, 1.01: 2, 3: 5, 7: 10, 1234: 2000, 999_999: 1_000_000} {
		if got := nice(in); got != want {
			t.Errorf("nice(%v) = %v, want %v", in, got, want)
		}
	}
}
