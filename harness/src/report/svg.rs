//! Ladder diagrams as SVG, for the HTML report: the geometry (where each
//! arrow and label goes, how wide the picture must be) apart from the
//! page around it.

use std::fmt::Write as _;

use crate::capture::annotate;
use crate::policy::Field;
use crate::report::escape::esc;
use crate::report::ladder;
use wire::conversation::{Connection, Direction};

/// Fields to mark on the segments of a ladder, by frame: each field with
/// its value, shown as an extra piece of the label when no piece of
/// Wireshark's label carries it (`ip.ttl=63`).
pub type Marks = std::collections::BTreeMap<usize, Vec<(Field, String)>>;

/// The label piece that shows `field`, if one does.
fn token_shows(token: &ladder::Token, field: Field) -> bool {
    match field {
        Field::Ts => token.field == "ts values",
        other => token.field == other.name(),
    }
}

/// The arrowhead every ladder's arrows end in, defined once per page (an
/// id is one element's). The page's first element.
pub const ARROW_DEFS: &str = "<svg width=\"0\" height=\"0\" style=\"position:absolute\" aria-hidden=\"true\"><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker></defs></svg>\n";

/// How a ladder's pieces look: classes, so each element names one.
pub const STYLE: &str = "svg.ladder text { text-anchor: middle; }\n\
svg.ladder text.peer { font-weight: bold; }\n\
svg.ladder text.note { text-anchor: end; fill: #666; }\n\
svg.ladder line.life { stroke: #555; stroke-width: 2; }\n\
svg.ladder line.ctl, svg.ladder line.dat, svg.ladder line.rst { stroke-width: 1.5; marker-end: url(#arrow); }\n\
svg.ladder .ctl { stroke: #05a; fill: #05a; } svg.ladder text.ctl { stroke: none; }\n\
svg.ladder .dat { stroke: #333; fill: #333; } svg.ladder text.dat { stroke: none; }\n\
svg.ladder .rst { stroke: #b00; fill: #b00; } svg.ladder text.rst { stroke: none; }\n";

/// `x` to a tenth of a unit.
fn tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Width of monospace text at the ladder's font size, in SVG units.
fn text_width(chars: usize) -> f64 {
    chars as f64 * 6.8
}

/// A conversation as an SVG ladder: client on the left, server on the
/// right, one sloped arrow per segment with Wireshark's label above it and
/// what it means on the left. The picture is as wide as its longest label,
/// so nothing is clipped; `marks` are drawn bold red.
pub fn svg_ladder(conn: &Connection, marks: &Marks) -> String {
    const LIMIT: usize = 60;
    let shown: Vec<&wire::conversation::Placed> = conn.segments.iter().take(LIMIT).collect();
    let none = Vec::new();
    // Each arrow's label as pieces: (text, marked field).
    let labels: Vec<Vec<(String, Option<Field>)>> = shown
        .iter()
        .map(|p| {
            let marked = marks.get(&p.segment.frame).unwrap_or(&none);
            let tokens: Vec<ladder::Token> = ladder::tokens(p)
                .into_iter()
                .filter(|t| t.field != "ts values" || marked.iter().any(|(f, _)| *f == Field::Ts))
                .collect();
            let mut pieces: Vec<(String, Option<Field>)> = tokens
                .iter()
                .map(|t| {
                    let field = marked
                        .iter()
                        .find(|(f, _)| token_shows(t, *f))
                        .map(|(f, _)| *f);
                    (t.text.clone(), field)
                })
                .collect();
            for (field, value) in marked {
                if !tokens.iter().any(|t| token_shows(t, *field)) {
                    pieces.push((format!("{}={value}", field.name()), Some(*field)));
                }
            }
            pieces
        })
        .collect();
    let annotations = annotate::Notes::of(conn);
    let notes: Vec<String> = shown
        .iter()
        .map(|p| {
            format!(
                "{} · {}",
                p.segment.frame,
                annotate::describe(conn, &annotations, p)
            )
        })
        .collect();
    let chars = |s: &str| s.chars().count();
    let client = format!("client {}", conn.client);
    let server = format!("server {}", conn.server);
    let widest_note = notes.iter().map(|n| chars(n)).max().unwrap_or(0);
    let widest_label = labels
        .iter()
        .map(|l| l.iter().map(|(t, _)| chars(t) + 1).sum::<usize>())
        .max()
        .unwrap_or(0);
    let left = (text_width(widest_note) + 20.0).max(text_width(chars(&client)) / 2.0 + 10.0);
    let right = left + (text_width(widest_label) + 40.0).max(400.0);
    let width = right + text_width(chars(&server)) / 2.0 + 10.0;
    let (top, step) = (50.0, 34.0);
    let height = top + step * shown.len() as f64 + 30.0;
    // Coordinates to a tenth of a unit: the picture is the same, the
    // markup a fraction. Styles are classes (the page's STYLE), and the
    // arrowhead is defined once per page ([`ARROW_DEFS`]).
    let (left, right, width) = (tenth(left), tenth(right), tenth(width));
    let mut out = format!(
        "<svg class=\"ladder\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height}\" viewBox=\"0 0 {width:.0} {height}\" role=\"img\" aria-label=\"ladder diagram\">\n"
    );
    let _ = writeln!(
        out,
        "<text x=\"{left}\" y=\"20\" class=\"peer\">{}</text><text x=\"{right}\" y=\"20\" class=\"peer\">{}</text>",
        esc(&client),
        esc(&server)
    );
    let bottom = height - 10.0;
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"30\" x2=\"{left}\" y2=\"{bottom}\" class=\"life\"/><line x1=\"{right}\" y1=\"30\" x2=\"{right}\" y2=\"{bottom}\" class=\"life\"/>"
    );
    for (i, p) in shown.iter().enumerate() {
        let y = top + step * i as f64;
        let (x1, x2) = match p.direction {
            Direction::ClientToServer => (left, right),
            Direction::ServerToClient => (right, left),
        };
        let kind = if p.segment.flags.rst {
            "rst"
        } else if p.segment.flags.syn || p.segment.flags.fin {
            "ctl"
        } else {
            "dat"
        };
        let label: Vec<String> = labels[i]
            .iter()
            .map(|(text, field)| match field {
                Some(f) => format!(
                    "<tspan class=\"mark\" data-field=\"{}\">{}</tspan>",
                    esc(f.name()),
                    esc(text)
                ),
                None => esc(text),
            })
            .collect();
        let _ = writeln!(
            out,
            "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{}\" class=\"{kind}\"/>\
             <text x=\"{}\" y=\"{}\" class=\"{kind}\">{}</text>\
             <text x=\"{}\" y=\"{}\" class=\"note\">{}</text>",
            y + 14.0,
            tenth((left + right) / 2.0),
            y - 1.0,
            label.join(" "),
            tenth(left - 8.0),
            y + 10.0,
            esc(&notes[i])
        );
    }
    if conn.segments.len() > LIMIT {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" class=\"more\">… {} more segments (see the capture)</text>",
            tenth((left + right) / 2.0),
            height - 14.0,
            conn.segments.len() - LIMIT
        );
    }
    out.push_str("</svg>\n");
    out
}
