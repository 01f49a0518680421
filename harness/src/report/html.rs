//! The HTML report: one self-contained file (inline CSS, inline SVG, a few
//! lines of script, nothing fetched), so it opens from the artifacts
//! folder, from a CI artifact download, or attached to a bug report.
//!
//! What a user opens after a red CI run: a header with the counts and
//! the baseline result; filters (all, not PASS, changed from the
//! baseline); one overview grid of every scenario × pairing; then the
//! cells that need a look (FAIL, DIFFERS), open, each with the reference's
//! ladder and its own side by side and the differing fields marked; then
//! per scenario the verdict matrix and the other cells, collapsed. Every
//! cell has a deep link, `report.html#SCENARIO/SERVER__CLIENT`.

use std::fmt::Write as _;

use crate::policy::CONVERSATION;
use crate::report::escape::esc;
use crate::report::model::{Reporter, RunView};
use crate::report::svg::{svg_ladder, Marks};
use crate::verdict::grade::{Cell, Verdict};
use crate::verdict::signature::Signature;
use wire::conversation::Connection;

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Differs => "differs",
        Verdict::Fail => "fail",
        Verdict::Unsupported | Verdict::Unavailable => "notrun",
    }
}

/// The deep link of a cell: its folder, `hello/python__rust`.
fn cell_id(cell: &Cell) -> String {
    cell.id.folder()
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
svg.ladder tspan.mark { font-weight: bold; fill: #c00; }
.muted { color: #666; }
.side { display: flex; flex-wrap: wrap; gap: 1em; overflow-x: auto; align-items: flex-start; }
.side figure { margin: 0; } .side figcaption { font-weight: 600; }
table.overview td.v { text-align: center; font-size: 12px; }
table.overview a { color: inherit; text-decoration: none; display: block; }
.filters label { margin-right: 1em; }
.hidden { display: none; }
.grids { display: flex; flex-wrap: wrap; gap: .8em 1.4em; align-items: flex-start; }
.grids table.overview { margin: 0; }
.grids caption { text-align: left; font-weight: 600; }
table.overview th, table.overview td { padding: .1em .35em; font-size: 12px; }
table.overview { display: table; }
.wide { overflow-x: auto; max-width: 100%; }
@media (max-width: 700px) {
  body { margin: .6em; font-size: 13px; }
  table { display: block; overflow-x: auto; max-width: 100%; }
  .side { display: block; }
  svg.ladder { max-width: none; }
  .side figure, details { overflow-x: auto; max-width: 100%; }
}
@media print { .filters { display: none; } details { display: block; } }
"#;

const SCRIPT: &str = r#"
// Open the details a matrix link points at. (The report holds no test
// code: the browser test measures the layout from a page of its own.)
function openTarget() {
  var el = document.getElementById(location.hash.slice(1));
  if (el && el.tagName === 'DETAILS') { el.open = true; }
}
window.addEventListener('hashchange', openTarget);
// The filters: every cell (details and overview square) carries
// data-verdict and data-changed; nothing is fetched.
function applyFilter(which) {
  document.querySelectorAll('[data-verdict]').forEach(function (el) {
    var show = which === 'all'
      || (which === 'notpass' && el.getAttribute('data-verdict') !== 'PASS')
      || (which === 'changed' && el.getAttribute('data-changed') === 'yes');
    el.classList.toggle('hidden', !show);
  });
}
window.addEventListener('load', function () {
  openTarget();
  document.querySelectorAll('.filters input').forEach(function (input) {
    input.addEventListener('change', function () { applyFilter(input.value); });
  });
});
"#;

/// The connection a cell's pictures show: the one compared, else the first.
fn shown_connection(cell: &Cell) -> Option<&Connection> {
    let run = cell.run.as_ref()?;
    run.connections
        .iter()
        .find(|c| c.established() || c.refused())
        .or(run.connections.first())
}

/// The reference's ladder and the cell's, side by side, each with the
/// fields `summary.json` lists as differing marked on the segment they
/// belong to; differences of the whole conversation listed below.
fn side_by_side(cell: &Cell, reference: &Cell) -> Option<String> {
    let (mine, theirs) = (shown_connection(cell)?, shown_connection(reference)?);
    let frame_of = |c: &Cell, label: &str| {
        c.run
            .as_ref()?
            .signature
            .as_ref()?
            .handshake
            .iter()
            .find(|s| s.label == label)?
            .frame
    };
    let (mut marks_mine, mut marks_theirs) = (Marks::new(), Marks::new());
    let mut whole = Vec::new();
    for d in &cell.differences {
        if d.segment == CONVERSATION {
            whole.push(d);
            continue;
        }
        if let Some(frame) = d.frame.or_else(|| frame_of(cell, &d.segment)) {
            marks_mine
                .entry(frame)
                .or_default()
                .push((d.field, d.actual.clone()));
        }
        if let Some(frame) = frame_of(reference, &d.segment) {
            marks_theirs
                .entry(frame)
                .or_default()
                .push((d.field, d.reference.clone()));
        }
    }
    let mut out = String::from("<div class=\"side\">\n");
    let _ = writeln!(
        out,
        "<figure class=\"reference\"><figcaption>reference: {}</figcaption>\n{}</figure>",
        esc(&reference.id.label()),
        svg_ladder(theirs, &marks_theirs)
    );
    let _ = writeln!(
        out,
        "<figure class=\"this\"><figcaption>this pairing: {}</figcaption>\n{}",
        esc(&cell.id.label()),
        svg_ladder(mine, &marks_mine)
    );
    if !whole.is_empty() {
        out.push_str("<ul>\n");
        for d in whole {
            let _ = writeln!(
                out,
                "<li>conversation <span class=\"mark\" data-field=\"{}\">{}</span>: {} here, {} in the reference</li>",
                esc(d.field.name()),
                esc(d.field.name()),
                esc(&d.actual),
                esc(&d.reference)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</figure>\n</div>\n");
    Some(out)
}

fn signature_html(sig: &Signature, cell: &Cell, reference: Option<&Signature>) -> String {
    let mut out = String::from(
        "<table><tr><th>segment</th><th>field</th><th>this pairing</th><th>reference</th></tr>\n",
    );
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
            let theirs = reference
                .and_then(|r| r.field(label, *field))
                .map_or("-".to_string(), |v| v.clone().unwrap_or_else(|| "-".into()));
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td{}>{}</td><td>{}</td></tr>",
                if i == 0 { label } else { "" },
                esc(field.name()),
                if differs { " class=\"mark\"" } else { "" },
                esc(value.as_deref().unwrap_or("-")),
                esc(&theirs)
            );
        }
    }
    out.push_str("</table>\n");
    out
}

fn cell_details(
    cell: &Cell,
    reference: Option<&Cell>,
    changed: bool,
    outputs: &[(&str, String)],
    open: bool,
) -> String {
    let mut out = format!(
        "<details class=\"cell\" id=\"{}\" data-verdict=\"{}\" data-changed=\"{}\"{}><summary><span class=\"{}\">{}</span> {}</summary>\n",
        esc(&cell_id(cell)),
        cell.verdict.name(),
        if changed { "yes" } else { "no" },
        if open { " open" } else { "" },
        verdict_class(cell.verdict),
        cell.verdict.name(),
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
    // The tutorial's own view first: one row per handshake segment, the
    // window both as the raw field and as Wireshark shows it.
    if let Some(conn) = shown_connection(cell) {
        let rows = crate::report::tutorial::rows(conn);
        if !rows.is_empty() {
            out.push_str("<table class=\"tutorial\"><tr><th>segment</th><th>frame</th><th>flags</th><th>Seq</th><th>Ack</th><th>Win (raw field)</th><th>× scale</th><th>Win as Wireshark shows it</th></tr>\n");
            for r in &rows {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    r.label,
                    r.frame,
                    esc(&r.flags),
                    r.seq,
                    r.ack.map_or_else(|| "-".to_string(), |a| a.to_string()),
                    r.raw_window,
                    r.scale,
                    r.window()
                );
            }
            out.push_str("</table>\n");
        }
    }
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
        out.push_str("<table><tr><th>segment</th><th>field</th><th>reference</th><th>this pairing</th><th>frame</th><th>known because</th></tr>\n");
        for d in &cell.differences {
            let key = d.key();
            let known = cell
                .known
                .iter()
                .find(|k| k.field == key)
                .map(|k| format!("{} ({})", k.reason, k.implementation))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<tr class=\"differs\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&d.segment),
                esc(d.field.name()),
                esc(&d.reference),
                esc(&d.actual),
                d.frame.map_or("-".into(), |f| f.to_string()),
                esc(&known)
            );
        }
        out.push_str("</table>\n");
    }
    let beside = reference
        .filter(|r| r.id != cell.id && !cell.differences.is_empty())
        .and_then(|r| side_by_side(cell, r));
    match beside {
        Some(side) => out.push_str(&side),
        None => {
            if let Some(conn) = shown_connection(cell) {
                out.push_str(&svg_ladder(conn, &Marks::new()));
            }
        }
    }
    let timeline = crate::report::timeline::rows(shown_connection(cell), &run.calls);
    if !timeline.is_empty() {
        out.push_str("<details open class=\"calls\"><summary>socket calls beside the wire (strace)</summary>\n<table class=\"timeline\"><tr><th>server calls</th><th>on the wire</th><th>client calls</th></tr>\n");
        for row in &timeline {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&row.server),
                esc(&row.wire),
                esc(&row.client)
            );
        }
        out.push_str("</table>\n");
        let traces: Vec<String> = [&run.calls.server, &run.calls.client]
            .into_iter()
            .flatten()
            .map(|r| format!("<a href=\"{0}\">{0}</a>", esc(&r.trace_file)))
            .collect();
        let _ = writeln!(
            out,
            "<p class=\"muted\">strace's output: {}</p>",
            traces.join(", ")
        );
        out.push_str("</details>\n");
    }
    // A PASS cell's compared fields are the reference's, value for value:
    // a link says so, where a copy of the reference's table would make the
    // report a copy of it per cell.
    let same_as = reference.filter(|r| r.id != cell.id && cell.verdict == Verdict::Pass);
    match (&run.signature, same_as) {
        (Some(_), Some(r)) => {
            let _ = writeln!(
                out,
                "<p class=\"muted\">Compared fields: every one as the reference's, <a href=\"#{}\">{}</a>.</p>",
                esc(&cell_id(r)),
                esc(&r.id.label())
            );
        }
        (Some(sig), None) => {
            let theirs = reference.and_then(|r| r.run.as_ref()?.signature.as_ref());
            out.push_str("<details open><summary>compared fields</summary>\n");
            out.push_str(&signature_html(sig, cell, theirs));
            out.push_str("</details>\n");
        }
        (None, _) => {}
    }
    for (name, text) in outputs {
        let _ = writeln!(out, "<p class=\"muted\">{name}</p><pre>{}</pre>", esc(text));
    }
    out.push_str("</details>\n");
    out
}

/// Per scenario a grid of its pairings, servers in rows and clients in
/// columns as the tutorials pair them, each square coloured by verdict and
/// a link to its cell; the grids wrap, so the overview fits any width.
fn overview(run: &RunView<'_>, changed: &dyn Fn(&Cell) -> bool) -> String {
    let mut out = String::from("<h2 id=\"overview\">Overview</h2>\n<div class=\"grids\">\n");
    for scenario in run.scenarios() {
        let cells: Vec<&Cell> = run
            .cells()
            .iter()
            .filter(|c| c.id.scenario == scenario.name)
            .collect();
        if !cells.is_empty() {
            let caption = format!(
                "<caption><a href=\"#scenario-{0}\">{0}</a></caption>",
                esc(&scenario.name)
            );
            out.push_str(&pairing_grid(&cells, "overview", &caption, changed));
        }
    }
    out.push_str("</div>\n<p class=\"muted\">– : not run here (unsupported by an implementation, or its program is not installed); the square's title says why.</p>\n");
    out
}

/// One scenario's cells as a table, servers in rows and clients in
/// columns, each square coloured by verdict and a link to its cell (a cell
/// that did not run is a dash, its verdict and reason in its title): the
/// overview's grids and each scenario's matrix alike.
fn pairing_grid(
    cells: &[&Cell],
    class: &str,
    caption: &str,
    changed: &dyn Fn(&Cell) -> bool,
) -> String {
    let (servers, clients) =
        crate::suite::pairing::servers_and_clients(cells.iter().map(|c| &c.id));
    let mut out = format!("<table class=\"{class}\">{caption}<tr><th>server \\ client</th>");
    for c in &clients {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr>\n");
    for server in &servers {
        let _ = write!(out, "<tr><th>{}</th>", esc(server));
        for client in &clients {
            let Some(cell) = cells
                .iter()
                .find(|c| c.id.server_name() == *server && c.id.client == *client)
            else {
                out.push_str("<td class=\"v notrun\"></td>");
                continue;
            };
            let shown = match cell.verdict {
                Verdict::Unsupported | Verdict::Unavailable => "–",
                v => v.name(),
            };
            let why = cell
                .reason
                .as_deref()
                .filter(|_| shown == "–")
                .map(|r| format!(" ({})", esc(r)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<td class=\"v {}\" data-verdict=\"{}\" data-changed=\"{}\"><a href=\"#{}\" title=\"{}: {}{why}\">{shown}</a></td>",
                verdict_class(cell.verdict),
                cell.verdict.name(),
                if changed(cell) { "yes" } else { "no" },
                esc(&cell_id(cell)),
                esc(&cell.id.label()),
                cell.verdict.name(),
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
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

/// `report.html`: the run for people, in a browser.
pub struct Html;

impl Reporter for Html {
    fn file_name(&self) -> &'static str {
        "report.html"
    }

    fn render(&self, run: &RunView<'_>) -> String {
        render(run)
    }
}

fn render(run: &RunView<'_>) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>TCP conformance report</title>\n");
    let _ = writeln!(
        out,
        "<style>{STYLE}{}</style>\n<script>{SCRIPT}</script>\n</head><body>\n{}",
        crate::report::svg::STYLE,
        crate::report::svg::ARROW_DEFS
    );
    out.push_str("<h1>TCP conformance report</h1>\n");
    let _ = writeln!(
        out,
        "<p>Verdicts: {}. Isolation: {}.</p>",
        esc(&run.counts.to_string()),
        esc(run.isolation())
    );
    if let Some(drops) = run.capture_drops() {
        let _ = writeln!(
            out,
            "<p class=\"fail\">Capture incomplete: {}.</p>",
            esc(&drops.to_string())
        );
    }
    if let Some(c) = run.comparison() {
        let _ = writeln!(
            out,
            "<p class=\"{}\">Baseline {}: {} cells as expected, {} changed, {} new (no entry yet).</p>",
            if c.conforms() { "pass" } else { "fail" },
            esc(&c.file),
            c.matched,
            c.changes.len() + c.stale.len(),
            c.new.len()
        );
        if c.not_as_expected().next().is_some() || !c.stale.is_empty() {
            out.push_str("<ul>\n");
            for ch in c.not_as_expected() {
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
    let changed = |cell: &Cell| run.changed(cell);
    out.push_str(
        "<p class=\"filters\">Show: \
         <label><input type=\"radio\" name=\"filter\" value=\"all\" checked> all</label>\
         <label><input type=\"radio\" name=\"filter\" value=\"notpass\"> not PASS</label>\
         <label><input type=\"radio\" name=\"filter\" value=\"changed\"> changed from the baseline</label></p>\n",
    );
    out.push_str(&overview(run, &changed));

    // What needs a look, open, before everything else.
    let all: Vec<&Cell> = run.cells().iter().collect();
    let look: Vec<(&Cell, bool)> = display_order(&all)
        .into_iter()
        .filter(|(_, open)| *open)
        .collect();
    // Declared differences (every differing field has its reason in the
    // manifest, and the baseline expects it) are known: collapsed under a
    // count, after what nobody expected.
    let declared = |cell: &Cell| {
        cell.verdict == Verdict::Differs
            && !changed(cell)
            && cell
                .differing_fields()
                .iter()
                .all(|f| cell.known.iter().any(|k| &k.field == f))
    };
    let (known, unexpected): (Vec<&Cell>, Vec<&Cell>) =
        look.iter().map(|(c, _)| *c).partition(|c| declared(c));
    if !unexpected.is_empty() {
        let _ = writeln!(
            out,
            "<h2 id=\"needs-a-look\">Needs a look: {} cell{}</h2>",
            unexpected.len(),
            if unexpected.len() == 1 { "" } else { "s" }
        );
        // What changed from the baseline first, then the rest.
        let mut ordered = unexpected.clone();
        ordered.sort_by_key(|c| !changed(c));
        for cell in ordered {
            out.push_str(&cell_details(
                cell,
                run.reference_of(cell),
                changed(cell),
                run.outputs(cell),
                true,
            ));
        }
    }
    if !known.is_empty() {
        let _ = writeln!(
            out,
            "<details id=\"declared\"><summary>Declared differences: {} cell{}, each as its implementation declares it, with the reason</summary>",
            known.len(),
            if known.len() == 1 { "" } else { "s" }
        );
        for cell in known {
            out.push_str(&cell_details(
                cell,
                run.reference_of(cell),
                false,
                run.outputs(cell),
                false,
            ));
        }
        out.push_str("</details>\n");
    }
    for (index, scenario) in run.scenarios().iter().enumerate() {
        let cells: Vec<&Cell> = run
            .cells()
            .iter()
            .filter(|c| c.id.scenario == scenario.name)
            .collect();
        if cells.is_empty() {
            continue;
        }
        let reference = run.reference_name(index);
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
        out.push_str(&pairing_grid(&cells, "matrix", "", &changed));
        if let Some(file) = run.merged().get(&scenario.name) {
            let _ = writeln!(
                out,
                "<p>Every pairing in one Wireshark window: <a href=\"{0}\">{0}</a>; select one with <code>frame.interface_name == \"SERVER__CLIENT\"</code>.</p>",
                esc(file)
            );
        }
        // The rest, collapsed; the cells above are linked from the matrix.
        for (cell, open) in display_order(&cells) {
            if !open {
                out.push_str(&cell_details(
                    cell,
                    run.reference_of(cell),
                    changed(cell),
                    run.outputs(cell),
                    false,
                ));
            }
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
        let html = cell_details(&cells[3], None, false, &[], true);
        assert!(
            html.starts_with("<details class=\"cell\" id=\"hello/python__d\"")
                && html.contains(" open>"),
            "{html}"
        );
    }
}
