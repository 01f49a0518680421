//! The HTML report: one self-contained file (inline CSS, inline SVG, a few
//! lines of script, nothing fetched), so it opens from the artifacts
//! folder, from a CI artifact download, or attached to a bug report.
//!
//! Per scenario: the verdict matrix, coloured; each cell links to its
//! details: checks, differences, the compared fields, an SVG ladder, the
//! programs' output, and its capture files.

use std::fmt::Write as _;
use std::path::Path;

use crate::capture::annotate;
use crate::policy::CONVERSATION;
use crate::report::ladder;
use crate::suite::scenario::Scenario;
use crate::verdict::baseline::Comparison;
use crate::verdict::grade::{Cell, Counts, Verdict};
use crate::verdict::signature::Signature;
use wire::conversation::{Connection, Direction};

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Differs => "differs",
        Verdict::Fail => "fail",
        Verdict::Unsupported | Verdict::Unavailable => "notrun",
    }
}

fn cell_id(cell: &Cell) -> String {
    format!(
        "cell-{}-{}-{}",
        cell.id.scenario,
        cell.id.server_name(),
        cell.id.client
    )
}

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #1b1b1b; max-width: 1200px; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
table.matrix td.v { text-align: center; font-weight: 600; }
table.matrix a { color: inherit; text-decoration: none; display: block; }
.pass { background: #d7f5d7; } .differs { background: #fff0b3; } .fail { background: #ffd0d0; }
.notrun { background: #eee; color: #666; }
.mark { background: #ffd0d0; font-weight: 600; }
details { margin: .4em 0; border: 1px solid #ddd; padding: .3em .6em; }
details[open] { background: #fcfcfc; }
summary { cursor: pointer; font-weight: 600; }
pre { background: #f4f4f4; padding: .5em; overflow-x: auto; max-height: 20em; }
svg.ladder text { font: 11px ui-monospace, monospace; }
.muted { color: #666; }
"#;

const SCRIPT: &str = r#"
// Open the details a matrix link points at, and record that the page was
// laid out (the headless-browser test reads data-rendered).
function openTarget() {
  var el = document.getElementById(location.hash.slice(1));
  if (el && el.tagName === 'DETAILS') { el.open = true; }
}
window.addEventListener('hashchange', openTarget);
window.addEventListener('load', function () {
  openTarget();
  var drawn = 0;
  document.querySelectorAll('svg.ladder').forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    var shown = svg.closest('details').open;
    if (shown && box.width > 0 && box.height > 0 && svg.querySelectorAll('line').length > 2) { drawn++; }
  });
  var matrices = document.querySelectorAll('table.matrix').length;
  document.body.setAttribute('data-rendered', 'ladders=' + drawn + ' matrices=' + matrices);
});
"#;

/// A conversation as an SVG ladder: client on the left, server on the
/// right, one sloped arrow per segment with Wireshark's label above it.
pub fn svg_ladder(conn: &Connection) -> String {
    const LIMIT: usize = 60;
    let (left, right, top, step) = (250.0, 910.0, 50.0, 34.0);
    let shown = conn.segments.len().min(LIMIT);
    let height = top + step * shown as f64 + 30.0;
    let mut out = format!(
        "<svg class=\"ladder\" xmlns=\"http://www.w3.org/2000/svg\" width=\"1060\" height=\"{height}\" viewBox=\"0 0 1060 {height}\" role=\"img\" aria-label=\"ladder diagram\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker></defs>\n"
    );
    let _ = writeln!(
        out,
        "<text x=\"{left}\" y=\"20\" text-anchor=\"middle\" font-weight=\"bold\">client {}</text>\
         <text x=\"{right}\" y=\"20\" text-anchor=\"middle\" font-weight=\"bold\">server {}</text>",
        esc(&conn.client.to_string()),
        esc(&conn.server.to_string())
    );
    let bottom = height - 10.0;
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"30\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"#555\" stroke-width=\"2\"/>\
         <line x1=\"{right}\" y1=\"30\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"#555\" stroke-width=\"2\"/>"
    );
    for (i, p) in conn.segments.iter().take(LIMIT).enumerate() {
        let y = top + step * i as f64;
        let (x1, x2) = match p.direction {
            Direction::ClientToServer => (left, right),
            Direction::ServerToClient => (right, left),
        };
        let label: Vec<String> = ladder::tokens(p)
            .into_iter()
            .filter(|t| t.field != "ts values")
            .map(|t| t.text)
            .collect();
        let colour = if p.segment.flags.rst {
            "#b00"
        } else if p.segment.flags.syn || p.segment.flags.fin {
            "#05a"
        } else {
            "#333"
        };
        let _ = writeln!(
            out,
            "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{colour}\">{}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"muted\" fill=\"#666\">{} · {}</text>",
            y + 14.0,
            (left + right) / 2.0,
            y - 1.0,
            esc(&label.join(" ")),
            left - 8.0,
            y + 10.0,
            p.segment.frame,
            esc(&annotate::describe(conn, p))
        );
    }
    if conn.segments.len() > LIMIT {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">… {} more segments (see the capture)</text>",
            (left + right) / 2.0,
            height - 14.0,
            conn.segments.len() - LIMIT
        );
    }
    out.push_str("</svg>\n");
    out
}

fn signature_html(sig: &Signature, cell: &Cell) -> String {
    let mut out = String::from("<table><tr><th>segment</th><th>field</th><th>value</th></tr>\n");
    // The handshake segments, then the conversation's meaning, alike.
    let groups = sig
        .handshake
        .iter()
        .map(|seg| (seg.label, &seg.fields))
        .chain(std::iter::once((CONVERSATION, &sig.meaning)));
    for (label, fields) in groups {
        for (i, (field, value)) in fields.iter().enumerate() {
            let differs = cell
                .differences
                .iter()
                .any(|d| d.segment == label && d.field == *field);
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td{}>{}</td></tr>",
                if i == 0 { label } else { "" },
                esc(field.name()),
                if differs { " class=\"mark\"" } else { "" },
                esc(value.as_deref().unwrap_or("-"))
            );
        }
    }
    out.push_str("</table>\n");
    out
}

/// A program's saved output, at most 4 KiB of it.
fn output_file(artifacts: &Path, dir: &str, name: &str) -> Option<String> {
    let bytes = std::fs::read(artifacts.join(dir).join(name)).ok()?;
    let shown = &bytes[..bytes.len().min(4096)];
    let mut text = String::from_utf8_lossy(shown).into_owned();
    if bytes.len() > shown.len() {
        let _ = write!(text, "\n… ({} bytes in all)", bytes.len());
    }
    Some(text)
}

fn cell_details(cell: &Cell, artifacts: &Path, open: bool) -> String {
    let mut out = format!(
        "<details id=\"{}\"{}><summary><span class=\"{}\">{}</span> {}</summary>\n",
        esc(&cell_id(cell)),
        if open { " open" } else { "" },
        verdict_class(cell.verdict),
        cell.verdict.as_str(),
        esc(&cell.id.label())
    );
    if let Some(reason) = &cell.reason {
        let _ = writeln!(out, "<p>{}</p>", esc(reason));
    }
    let Some(run) = &cell.run else {
        out.push_str("</details>\n");
        return out;
    };
    let mut links = Vec::new();
    for file in [&run.pcapng_file, &run.capture_file].into_iter().flatten() {
        links.push(format!("<a href=\"{0}\">{0}</a>", esc(file)));
    }
    let _ = writeln!(
        out,
        "<p>Captures: {} (port {}, {:.2} s)</p>",
        links.join(", "),
        run.port,
        run.seconds
    );
    out.push_str("<table><tr><th>check</th><th></th><th>detail</th></tr>\n");
    for c in &run.checks {
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            if c.passed { "pass" } else { "fail" },
            esc(c.name.name()),
            if c.passed { "ok" } else { "FAIL" },
            esc(&c.detail)
        );
    }
    out.push_str("</table>\n");
    if !cell.differences.is_empty() {
        out.push_str("<table><tr><th>segment</th><th>field</th><th>reference</th><th>this pairing</th><th>frame</th></tr>\n");
        for d in &cell.differences {
            let _ = writeln!(
                out,
                "<tr class=\"differs\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&d.segment),
                esc(d.field.name()),
                esc(&d.reference),
                esc(&d.actual),
                d.frame.map_or("-".into(), |f| f.to_string())
            );
        }
        out.push_str("</table>\n");
    }
    if let Some(conn) = run
        .connections
        .iter()
        .find(|c| c.established() || c.refused())
        .or(run.connections.first())
    {
        out.push_str(&svg_ladder(conn));
    }
    if let Some(sig) = &run.signature {
        out.push_str("<details><summary>compared fields</summary>\n");
        out.push_str(&signature_html(sig, cell));
        out.push_str("</details>\n");
    }
    for name in [
        "server.stdout",
        "server.stderr",
        "client.stdout",
        "client.stderr",
    ] {
        if let Some(text) = output_file(artifacts, &run.dir, name) {
            if !text.is_empty() {
                let _ = writeln!(
                    out,
                    "<p class=\"muted\">{name}</p><pre>{}</pre>",
                    esc(&text)
                );
            }
        }
    }
    out.push_str("</details>\n");
    out
}

/// Everything the report needs about the run.
pub struct Run<'a> {
    pub scenarios: &'a [Scenario],
    pub cells: &'a [Cell],
    /// Per scenario, its reference implementation.
    pub references: &'a [String],
    pub counts: &'a Counts,
    pub isolation: &'a str,
    pub comparison: Option<&'a Comparison>,
    pub merged: &'a std::collections::BTreeMap<String, String>,
    pub artifacts: &'a Path,
}

/// The cells as the report lists them: what needs a look first (FAIL,
/// then DIFFERS, expanded), then PASS, then the cells that did not run,
/// collapsed; plan order within each.
fn display_order<'a>(cells: &[&'a Cell]) -> Vec<(&'a Cell, bool)> {
    let rank = |v: Verdict| match v {
        Verdict::Fail => 0,
        Verdict::Differs => 1,
        Verdict::Pass => 2,
        Verdict::Unsupported | Verdict::Unavailable => 3,
    };
    let mut ordered: Vec<&Cell> = cells.to_vec();
    ordered.sort_by_key(|c| rank(c.verdict));
    ordered
        .into_iter()
        .map(|c| (c, matches!(c.verdict, Verdict::Fail | Verdict::Differs)))
        .collect()
}

pub fn render(run: &Run<'_>) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>TCP conformance report</title>\n");
    let _ = writeln!(
        out,
        "<style>{STYLE}</style>\n<script>{SCRIPT}</script>\n</head><body>"
    );
    out.push_str("<h1>TCP conformance report</h1>\n");
    let _ = writeln!(
        out,
        "<p>Verdicts: {}. Isolation: {}.</p>",
        esc(&run.counts.to_string()),
        esc(run.isolation)
    );
    if let Some(c) = run.comparison {
        let _ = writeln!(
            out,
            "<p class=\"{}\">Baseline {}: {} cells as expected, {} changed.</p>",
            if c.conforms() { "pass" } else { "fail" },
            esc(&c.file),
            c.matched,
            c.changes.len() + c.stale.len()
        );
        if !c.changes.is_empty() || !c.stale.is_empty() {
            out.push_str("<ul>\n");
            for ch in &c.changes {
                let _ = writeln!(out, "<li>{}</li>", esc(&ch.to_string()));
            }
            for stale in &c.stale {
                let _ = writeln!(
                    out,
                    "<li>{}: in the baseline, but the suite no longer has this cell</li>",
                    esc(stale)
                );
            }
            out.push_str("</ul>\n");
        }
    }
    for (index, scenario) in run.scenarios.iter().enumerate() {
        let cells: Vec<&Cell> = run
            .cells
            .iter()
            .filter(|c| c.id.scenario == scenario.name)
            .collect();
        if cells.is_empty() {
            continue;
        }
        let reference = &run.references[index];
        let _ = writeln!(
            out,
            "<h2 id=\"scenario-{0}\">Scenario {0}</h2>\n<p>{1}</p>",
            esc(&scenario.name),
            esc(&scenario.description)
        );
        let _ = writeln!(
            out,
            "<p class=\"muted\">Servers in rows, clients in columns; reference: {0} × {0}.</p>",
            esc(reference)
        );
        let mut servers: Vec<&str> = Vec::new();
        let mut clients: Vec<&str> = Vec::new();
        for c in &cells {
            if !servers.contains(&c.id.server_name()) {
                servers.push(c.id.server_name());
            }
            if !clients.contains(&c.id.client.as_str()) {
                clients.push(&c.id.client);
            }
        }
        out.push_str("<table class=\"matrix\"><tr><th>server \\ client</th>");
        for c in &clients {
            let _ = write!(out, "<th>{}</th>", esc(c));
        }
        out.push_str("</tr>\n");
        for s in &servers {
            let _ = write!(out, "<tr><th>{}</th>", esc(s));
            for c in &clients {
                match cells
                    .iter()
                    .find(|x| x.id.server_name() == *s && x.id.client == *c)
                {
                    Some(cell) => {
                        let _ = write!(
                            out,
                            "<td class=\"v {}\"><a href=\"#{}\" title=\"{}\">{}</a></td>",
                            verdict_class(cell.verdict),
                            esc(&cell_id(cell)),
                            esc(cell.reason.as_deref().unwrap_or(&cell.id.label())),
                            cell.verdict.as_str()
                        );
                    }
                    None => out.push_str("<td class=\"v notrun\">-</td>"),
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
        if let Some(file) = run.merged.get(&scenario.name) {
            let _ = writeln!(
                out,
                "<p>Every pairing in one Wireshark window: <a href=\"{0}\">{0}</a>; select one with <code>frame.interface_name == \"SERVER__CLIENT\"</code>.</p>",
                esc(file)
            );
        }
        for (cell, open) in display_order(&cells) {
            out.push_str(&cell_details(cell, run.artifacts, open));
        }
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::PairingId;

    fn cell(client: &str, verdict: Verdict) -> Cell {
        Cell::graded(PairingId::new("hello", Some("python"), client), verdict)
    }

    /// A run with one PASS, one DIFFERS and one FAIL opens the two that
    /// need a look, first, and leaves the PASS collapsed below them.
    #[test]
    fn cells_that_need_a_look_come_first_and_open() {
        let cells = [
            cell("a", Verdict::Pass),
            cell("b", Verdict::Unsupported),
            cell("c", Verdict::Differs),
            cell("d", Verdict::Fail),
        ];
        let refs: Vec<&Cell> = cells.iter().collect();
        let shown: Vec<(&str, bool)> = display_order(&refs)
            .into_iter()
            .map(|(c, open)| (c.id.client.as_str(), open))
            .collect();
        assert_eq!(
            shown,
            [("d", true), ("c", true), ("a", false), ("b", false)]
        );
        let html = cell_details(&cells[3], Path::new("/nonexistent"), true);
        assert!(
            html.starts_with("<details id=") && html.contains(" open>"),
            "{html}"
        );
    }
}
