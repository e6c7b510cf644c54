// Package chart draws time series as small SVG charts on the server, for
// pages that embed them inline: no script and no build step. Colours come
// from the page's stylesheet (by class), so the markup carries no style
// attribute for the CSP to refuse. The cloud's web UI and the home's console
// both draw with it.
package chart

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// Line is one series of a chart.
type Line struct {
	Name   string // the legend's text
	Class  string // CSS class giving the colour: lowercase letters, digits, '-'
	Values []float64
}

// Chart is a line-and-area chart over time: Values[i] of every line is at
// Start + i*Step.
type Chart struct {
	Title         string
	Width, Height int // default 640 x 160; a sparkline's 120 x 28
	Start         time.Time
	Step          time.Duration
	Lines         []Line
	// Format writes the y axis's labels; default a plain number.
	Format func(float64) string
	// Min is the least top of the y axis, so a quiet series stays flat at
	// the bottom instead of filling the chart; default 1.
	Min float64
	// Spark draws only the lines: no axes, labels or legend.
	Spark bool
}

// Margins around the plot, in SVG units.
const (
	left, right, top, bottom = 64, 8, 22, 20
)

// SVG renders the chart. Every text in it is escaped, so names may hold
// anything.
func SVG(c Chart) template.HTML {
	if c.Width <= 0 || c.Height <= 0 {
		c.Width, c.Height = 640, 160
		if c.Spark {
			c.Width, c.Height = 120, 28
		}
	}
	if c.Format == nil {
		c.Format = func(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }
	}
	x0, y0, x1, y1 := float64(left), float64(top), float64(c.Width-right), float64(c.Height-bottom)
	if c.Spark {
		x0, y0, x1, y1 = 1, 1, float64(c.Width-1), float64(c.Height-1)
	}
	n, peak := 0, 0.0
	for _, l := range c.Lines {
		n = max(n, len(l.Values))
		for _, v := range l.Values {
			peak = max(peak, v)
		}
	}
	top := nice(max(peak, c.Min))
	xAt := func(i int) float64 {
		if n < 2 {
			return x1
		}
		return x0 + (x1-x0)*float64(i)/float64(n-1)
	}
	yAt := func(v float64) float64 { return y1 - (y1-y0)*math.Max(v, 0)/top }

	var b strings.Builder
	class := "chart"
	if c.Spark {
		class = "chart spark"
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		class, c.Width, c.Height, c.Width, c.Height, esc(c.Title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(c.Title))
	if !c.Spark {
		// Grid at half and full scale, the axes, their labels, the title and the legend.
		for _, v := range []float64{top / 2, top} {
			fmt.Fprintf(&b, `<path class="grid" d="M%s %sH%s"/>`, num(x0), num(yAt(v)), num(x1))
		}
		fmt.Fprintf(&b, `<path class="axis" d="M%s %sV%sH%s"/>`, num(x0), num(y0), num(y1), num(x1))
		for _, v := range []float64{0, top / 2, top} {
			fmt.Fprintf(&b, `<text class="label" x="%s" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`, num(x0-4), num(yAt(v)), esc(c.Format(v)))
		}
		if n > 0 {
			end := c.Start.Add(time.Duration(n-1) * c.Step)
			fmt.Fprintf(&b, `<text class="label" x="%s" y="%d">%s</text>`, num(x0), c.Height-4, esc(clock(c.Start)))
			fmt.Fprintf(&b, `<text class="label" x="%s" y="%d" text-anchor="end">%s</text>`, num(x1), c.Height-4, esc(clock(end)+" UTC"))
		}
		fmt.Fprintf(&b, `<text class="title" x="%s" y="14">%s</text>`, num(x0), esc(c.Title))
		lx := x1
		for i := len(c.Lines) - 1; i >= 0; i-- {
			l := c.Lines[i]
			fmt.Fprintf(&b, `<text class="legend %s" x="%s" y="14" text-anchor="end">%s</text>`, cssClass(l.Class), num(lx), esc("■ "+l.Name))
			lx -= float64(12 + 8*len([]rune(l.Name)))
		}
		if n == 0 {
			fmt.Fprintf(&b, `<text class="label empty" x="%s" y="%s" text-anchor="middle">no data yet</text>`, num((x0+x1)/2), num((y0+y1)/2))
		}
	}
	for _, l := range c.Lines {
		if len(l.Values) == 0 {
			continue
		}
		var line strings.Builder
		for i, v := range l.Values {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&line, "%s%s %s", cmd, num(xAt(i)), num(yAt(v)))
		}
		cls := cssClass(l.Class)
		fmt.Fprintf(&b, `<path class="area %s" d="M%s %s%sL%s %sZ"/>`, cls, num(xAt(0)), num(y1), "L"+line.String()[1:], num(xAt(len(l.Values)-1)), num(y1))
		fmt.Fprintf(&b, `<path class="line %s" d="%s"><title>%s</title></path>`, cls, line.String(), esc(l.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text above went through esc
}

// nice rounds a peak up to 1, 2 or 5 times a power of ten, so the axis's
// labels are round; an empty chart gets a scale of 1.
func nice(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func clock(t time.Time) string { return t.UTC().Format("15:04") }

// esc escapes text for SVG (XML) content and attribute values.
func esc(s string) string { return template.HTMLEscapeString(s) }

// cssClass keeps a class to the characters it is documented to have.
func cssClass(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, s)
}
