package explain

import (
	"fmt"
	"io"
	"sync"
	"text/template"
)

// WriteHTML writes the timeline as one self-contained page: inline CSS, no script, no
// font, image or link outside the page. Each lane is a process; each of its rows a group of
// steps (Groups); each step a box at its time, as long as it lasted. Hovering a box shows its
// narration and the function that did it; clicking it goes to its line in the table of every
// step. The slowest steps and the totals make it a profile of the container's start.
func (t *Timeline) WriteHTML(w io.Writer) error {
	t.mu.Lock()
	p := layout(t.Title, t.Err, t.Steps)
	t.mu.Unlock()
	return pageTemplate().Execute(w, p)
}

// Style places the box on its track.
func (b box) Style() string {
	return fmt.Sprintf("left:%.3f%%;width:%.3f%%", b.Left, b.Width)
}

// TipClass anchors the hover text on the side of the track with room for it.
func (b box) TipClass() string {
	if b.Left > 55 {
		return "tip r"
	}
	return "tip"
}

func (k tick) Style() string { return fmt.Sprintf("left:%.3f%%", k.Left) }

func (c cut) Style() string {
	return fmt.Sprintf("left:%.3f%%;width:%.3f%%", c.Left, c.Width)
}

// pageTemplate is parsed on first use: parsing it costs every berth process about 0.2 ms
// at start-up otherwise (GODEBUG=inittrace=1), and only --explain=html needs it. It is a
// text/template whose every value goes through its html function: html/template's own package
// initialisers cost every berth process another 0.07 to 0.1 ms, and the page's values are
// all text or quoted attributes (the styles are numbers berth formats).
var pageTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Parse(pageSource))
})

const pageSource = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>berth timeline: {{html .Title}}</title>
<style>
body { font: 13px/1.4 sans-serif; margin: 16px; color: #222; background: #fff; }
h1 { font-size: 18px; margin: 0 0 4px; }
h1 code, td code { font-family: monospace; }
h2 { font-size: 15px; margin: 20px 0 6px; }
.sum { margin: 4px 0 10px; }
.err { color: #a00; font-weight: bold; }
.legend span { display: inline-block; padding: 1px 8px; margin: 0 4px 4px 0; border-radius: 3px; color: #fff; opacity: 0.85; }
.tl { min-width: 1100px; border: 1px solid #ccc; }
.axis, .row { display: flex; }
.rlabel { width: 110px; flex: none; padding: 0 6px; color: #555; font-size: 11px; line-height: 18px; text-align: right; border-right: 1px solid #ccc; }
.track { position: relative; flex: 1; height: 18px; }
.axis .track { height: 18px; border-bottom: 1px solid #ccc; }
.axis .track span { position: absolute; top: 2px; font-size: 10px; color: #666; border-left: 1px solid #bbb; padding-left: 2px; }
.gap { position: absolute; top: 0; bottom: 0; background: repeating-linear-gradient(135deg, #eee 0 4px, #fff 4px 8px); }
.axis .track span.gap { top: 0; border-left: none; padding: 0; color: #333; text-align: center; white-space: nowrap; overflow: hidden; font-size: 9px; line-height: 18px; }
.lane { border-top: 1px solid #999; }
.lanehead { background: #f2f2f2; padding: 2px 6px; font-size: 12px; }
.lanehead b { font-size: 13px; }
.lanehead .note { color: #666; margin-left: 8px; }
.box { position: absolute; top: 2px; height: 14px; min-width: 2px; box-sizing: border-box; border-right: 1px solid #fff; color: #fff; font-size: 10px; line-height: 14px; text-decoration: none; overflow: visible; white-space: nowrap; }
.box .name { display: block; overflow: hidden; text-overflow: clip; padding-left: 2px; }
.box .tip { display: none; position: absolute; top: 16px; left: 0; z-index: 10; width: 460px; white-space: normal; background: #ffffe8; color: #222; border: 1px solid #888; padding: 4px 6px; font-size: 12px; box-shadow: 2px 2px 4px #aaa; }
.box .tip.r { left: auto; right: 0; }
.box:hover, .box:focus { outline: 2px solid #000; z-index: 5; }
.box:hover .tip, .box:focus .tip { display: block; }
.tip code { font-family: monospace; font-size: 11px; }
.g-namespaces { background: #1f77b4; } .g-cgroups { background: #2ca02c; } .g-rootfs { background: #8c564b; }
.g-image { background: #bcbd22; } .g-capabilities { background: #d62728; } .g-seccomp { background: #9467bd; }
.g-hooks { background: #e377c2; } .g-exec { background: #ff7f0e; } .g-lifecycle { background: #7f7f7f; }
table { border-collapse: collapse; }
td, th { border-bottom: 1px solid #e4e4e4; padding: 1px 8px; text-align: left; vertical-align: top; font-size: 12px; }
td.d { max-width: 760px; overflow-wrap: anywhere; }
td.n { text-align: right; white-space: nowrap; font-family: monospace; }
td .chip { display: inline-block; width: 10px; height: 10px; margin-right: 4px; opacity: 0.85; }
tr:target { background: #ffef9e; }
</style>
</head>
<body>
<h1>berth timeline: <code>{{html .Title}}</code></h1>
<p class="sum">{{len .Steps}} steps in {{len .Lanes}} lanes over {{html .Span}}{{if .Ready}}; the user's program was executed {{html .Ready}} after the first step{{end}}.
Each lane is a process, each row a kind of work; a step lasts from its narration to the next event of its process (a step, or waiting for another process). Hover a box for what it did, click it for its line below.</p>
{{if .Err}}<p class="err">The command failed: {{html .Err}}</p>{{end}}
{{if .Cuts}}<p class="sum">Hatched: a stretch where berth did nothing (waiting for start, or for the program), cut short; its length is written on the axis.</p>{{end}}
<div class="legend">{{range .Groups}}<span class="g-{{html .}}">{{html .}}</span>{{end}}</div>
<div class="tl">
<div class="axis"><div class="rlabel">time</div><div class="track">{{range .Ticks}}<span style="{{html .Style}}">{{html .Label}}</span>{{end}}{{range .Cuts}}<span class="gap" style="{{html .Style}}" title="{{html .Label}} cut short">{{html .Label}}</span>{{end}}</div></div>
{{range .Lanes}}<div class="lane" data-lane="{{html .Name}}">
<div class="lanehead"><b>{{html .Name}}</b>{{if .Pid}} pid {{html .Pid}}{{end}}<span class="note">{{html .Note}}{{if .Note}}; {{end}}steps: {{html .BusyMs}}</span></div>
{{range .Rows}}<div class="row"><div class="rlabel">{{html .Group}}</div><div class="track">{{range $.Cuts}}<span class="gap" style="{{html .Style}}"></span>{{end}}{{range .Boxes}}<a class="box g-{{html .Group}}" id="b{{html .ID}}" href="#s{{html .ID}}" style="{{html .Style}}"><span class="name">{{html .Short}}</span><span class="{{html .TipClass}}"><b>{{html .Name}}</b>{{if .Where}} <code>{{html .Where}}</code>{{end}}<br>{{html .Detail}}<br>at {{html .StartMs}}, for {{html .DurMs}}</span></a>{{end}}</div></div>
{{end}}</div>
{{end}}</div>
<h2>Slowest steps</h2>
<table>
<tr><th>for</th><th>at</th><th>lane</th><th>step</th><th>what it did</th></tr>
{{range .Slowest}}<tr><td class="n">{{html .DurMs}}</td><td class="n">{{html .StartMs}}</td><td>{{html .Lane}}</td><td><a href="#s{{html .ID}}">{{html .Name}}</a></td><td class="d">{{html .Detail}}</td></tr>
{{end}}</table>
<h2>Every step</h2>
<table>
<tr><th>at</th><th>for</th><th>lane</th><th>step</th><th>what it did</th><th>source</th></tr>
{{range .Steps}}<tr id="s{{html .ID}}"><td class="n">{{html .StartMs}}</td><td class="n">{{html .DurMs}}</td><td>{{html .Lane}}</td><td><span class="chip g-{{html .Group}}"></span><a href="#b{{html .ID}}">{{html .Name}}</a></td><td class="d">{{html .Detail}}</td><td><code>{{html .Where}}</code></td></tr>
{{end}}</table>
</body>
</html>
`
