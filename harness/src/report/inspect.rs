//! Any capture, explained: `harness inspect`, `harness diff` and
//! `harness show` work on pcap or pcapng files, including ones a user saved
//! from Wireshark or tcpdump, with the same dissection, field policies and
//! ladders as the matrix.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::report::ladder::{self, Paint, Width};
use crate::report::terminal;
use crate::verdict::signature::{self, Difference, Signature};
use crate::verdict::survey::{self, Selection, Survey, SurveyError};
use wire::conversation::Connection;
use wire::dissect::LinkType;

/// A capture file read for comparison: what it holds, and the connection
/// to compare.
pub struct Capture {
    pub path: PathBuf,
    pub survey: Survey,
    /// The connection to compare and its number: the first established
    /// one, else the first refused attempt (the rule a cell uses).
    pub main: Option<(usize, Connection)>,
}

/// Why a capture cannot be explained; each names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Survey(#[from] SurveyError),
    #[error("{path}: {unread}{}{}", if unread.is_empty() { "holds no TCP connection" } else { ", and the rest holds no TCP connection" }, match port { Some(p) => format!(" on port {p}; run without --port to list them"), None => String::new() })]
    NoConnection {
        path: String,
        port: Option<u16>,
        /// What could not be read, when something could not: said first,
        /// as the likely reason there is no connection.
        unread: String,
    },
}

/// Reads `path` for `diff` and `show`, keeping only the connection to
/// compare (on `port`, if given).
pub fn load(path: &Path, port: Option<u16>) -> Result<Capture, InspectError> {
    let selection = port.map_or(Selection::All, Selection::Port);
    type Numbered = Option<(usize, Connection)>;
    let (mut established, mut refused): (Numbered, Numbered) = (None, None);
    let survey = survey::survey(path, &selection, |n, c| {
        let slot = if c.established() {
            &mut established
        } else if c.refused() {
            &mut refused
        } else {
            return;
        };
        if slot.as_ref().is_none_or(|(m, _)| n < *m) {
            *slot = Some((n, c.clone()));
        }
    })?;
    Ok(Capture {
        path: path.to_path_buf(),
        main: established.or(refused),
        survey,
    })
}

impl Capture {
    /// The connection to compare, or why there is none.
    pub fn main_connection(&self, port: Option<u16>) -> Result<&Connection, InspectError> {
        self.main
            .as_ref()
            .map(|(_, c)| c)
            .ok_or_else(|| no_connection(&self.survey, port))
    }
}

fn no_connection(survey: &Survey, port: Option<u16>) -> InspectError {
    InspectError::NoConnection {
        path: survey.path.display().to_string(),
        port,
        unread: match (&survey.first_unread, &survey.stopped) {
            (Some(first), _) => format!(
                "{} of {} frames could not be dissected (the first: {first})",
                survey.unread, survey.frames
            ),
            (None, Some(stopped)) => format!("reading stopped early ({stopped})"),
            (None, None) => String::new(),
        },
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn link_names(links: &[i32]) -> String {
    let names: Vec<String> = links
        .iter()
        .map(|dlt| match LinkType::from_dlt(*dlt) {
            Some(link) => format!("{link:?}"),
            None => format!("{dlt} (not supported)"),
        })
        .collect();
    match names.len() {
        0 => "no interface".into(),
        1 => format!("link type {}", names[0]),
        _ => format!("link types {}", names.join(", ")),
    }
}

/// The lines before everything else: what could not be read first, so
/// it is never hidden below a long listing.
fn header(survey: &Survey) -> String {
    let mut out = String::new();
    if let Some(first) = &survey.first_unread {
        let _ = writeln!(
            out,
            "{} of {} frames could not be read; the first: {first}",
            survey.unread, survey.frames
        );
    }
    if let Some(stopped) = &survey.stopped {
        let _ = writeln!(out, "reading stopped early: {stopped}");
    }
    let _ = writeln!(
        out,
        "{}: {}, {}, {}, {}",
        survey.path.display(),
        plural(survey.frames, "frame", "frames"),
        survey.format,
        link_names(&survey.links),
        plural(survey.connections, "TCP connection", "TCP connections"),
    );
    if survey.abandoned_fragments > 0 {
        let _ = writeln!(
            out,
            "  {} of IP packets that never completed (not read)",
            plural(survey.abandoned_fragments, "fragment", "fragments")
        );
    }
    if survey.late_segments > 0 {
        let _ = writeln!(
            out,
            "  {} after their connection was over (not shown)",
            plural(survey.late_segments, "segment came", "segments came")
        );
    }
    out
}

/// One connection's line: on one line when it fits `width`, else its
/// outcome below it, wrapped at its commas.
/// A connection that came through tunnels has their path on a line of its
/// own below it ("inside VXLAN, VNI 42 …").
fn connection_line(line: &survey::Line, width: Width) -> String {
    let tunnel = line
        .tunnel
        .as_ref()
        .map(|t| format!("      inside {t}\n"))
        .unwrap_or_default();
    let one = format!("  #{} {}  {}\n", line.number, line.label, line.outcome);
    let columns = match width {
        Width::Columns(c) if one.chars().count() > c + 1 => c,
        _ => return one + &tunnel,
    };
    let mut out = format!("  #{} {}\n", line.number, line.label);
    out.push_str(&tunnel);
    let indent = "      ";
    let mut current = String::from(indent);
    for (i, part) in line.outcome.split(", ").enumerate() {
        let piece = if i == 0 {
            part.to_string()
        } else {
            format!(", {part}")
        };
        if current.len() > indent.len() && current.chars().count() + piece.chars().count() > columns
        {
            out.push_str(current.trim_end_matches(' '));
            out.push_str(",\n");
            current = format!("{indent}{}", piece.trim_start_matches(", "));
        } else {
            current.push_str(&piece);
        }
    }
    out.push_str(&current);
    out.push('\n');
    out
}

/// The summary of a capture with many connections: its handshake
/// signatures, then the connections that stand out.
fn summary(survey: &Survey, width: Width) -> String {
    const COLUMNS: usize = 6;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} with a full handshake, {}:",
        plural(survey.with_handshake(), "connection", "connections"),
        plural(
            survey.groups.len(),
            "handshake signature",
            "handshake signatures"
        )
    );
    let letter = |i: usize| {
        if i < 26 {
            char::from(b'A' + i as u8).to_string()
        } else {
            format!("S{}", i + 1)
        }
    };
    for (i, g) in survey.groups.iter().enumerate() {
        let ports: Vec<String> = g.server_ports.iter().map(u16::to_string).collect();
        let _ = writeln!(
            out,
            "  {:<3} {:>8}  server {} {}{}, e.g. #{} (frame {})",
            letter(i),
            plural(g.count, "connection", "connections"),
            if ports.len() == 1 { "port" } else { "ports" },
            ports.join(", "),
            if g.more_ports { ", …" } else { "" },
            g.example.0,
            g.example.1
        );
    }
    if survey.other_signatures > 0 {
        let _ = writeln!(
            out,
            "  and {} of other signatures (only the first {} are kept)",
            plural(survey.other_signatures, "connection", "connections"),
            survey::GROUPS_KEPT
        );
    }
    if !survey.groups.is_empty() {
        let signatures: Vec<(String, Signature)> = survey
            .groups
            .iter()
            .take(COLUMNS)
            .enumerate()
            .map(|(i, g)| {
                (
                    letter(i),
                    Signature {
                        handshake: g.handshake.clone(),
                        meaning: Vec::new(),
                    },
                )
            })
            .collect();
        let columns: Vec<(String, &Signature, &[Difference])> = signatures
            .iter()
            .map(|(l, s)| (l.clone(), s, &[][..]))
            .collect();
        out.push('\n');
        out.push_str(&terminal::signature_table(&columns));
        if survey.groups.len() > COLUMNS {
            let _ = writeln!(out, "(the first {COLUMNS} signatures are shown)");
        }
    }
    if survey.outlier_counts.is_empty() {
        let _ = writeln!(out, "\nNo connection stands out.");
    } else {
        let counts: Vec<String> = survey
            .outlier_counts
            .iter()
            .map(|(kind, n)| format!("{n} {}", kind.as_str()))
            .collect();
        let _ = writeln!(out, "\nStanding out: {}", counts.join(", "));
        for line in &survey.outliers {
            out.push_str(&connection_line(line, width));
        }
        let total: usize = survey.outlier_counts.iter().map(|(_, n)| *n).sum();
        if total > survey.outliers.len() {
            let _ = writeln!(
                out,
                "  (the first {} are listed; --all shows every connection)",
                survey.outliers.len()
            );
        }
    }
    out
}

/// One connection in full: its compared fields and its ladder.
pub fn render_connection(number: usize, c: &Connection, width: Width) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n== connection #{number}: {}", c.endpoints());
    if let Some(tunnel) = &c.tunnel {
        let _ = writeln!(out, "   inside {tunnel}");
    }
    out.push('\n');
    // The tutorial's own view first: one row per handshake segment.
    let table = crate::report::tutorial::render(c);
    if !table.is_empty() {
        out.push_str(&table);
        out.push('\n');
    }
    if c.established() || c.refused() {
        let sig = signature::signature(c);
        out.push_str(&terminal::signature_table(&[(
            format!("#{number}"),
            &sig,
            &[],
        )]));
        out.push('\n');
    }
    out.push_str(&ladder::render_fit(c, width));
    out
}

/// `harness inspect`: reads `path` once, writing to `out` as it goes.
///
/// With at most [`survey::DETAIL_UP_TO`] connections (and no selection):
/// the header, one line per connection, then each in full. With more: the
/// header and the summary by signature. With `--all`, `--port` or
/// `--connection`: each chosen connection in full as soon as the capture
/// shows it over, then the header and the summary, so a capture of any
/// size streams through in bounded memory.
pub fn inspect(
    path: &Path,
    selection: &Selection,
    width: Width,
    out: &mut dyn std::io::Write,
) -> Result<(), InspectInterrupted> {
    let mut shown = 0usize;
    let mut failed: Option<std::io::Error> = None;
    let mut held: Vec<String> = Vec::new();
    let streams = selection.streams();
    let result = survey::survey(path, selection, |n, c| {
        shown += 1;
        let text = render_connection(n, c, width);
        if !streams {
            held.push(text);
        } else if failed.is_none() {
            if let Err(e) = out.write_all(text.as_bytes()) {
                failed = Some(e);
            }
        }
    });
    if let Some(e) = failed {
        return Err(InspectInterrupted::Write(e));
    }
    let survey = result.map_err(|e| InspectInterrupted::Inspect(e.into()))?;
    if survey.connections == 0 {
        return Err(InspectInterrupted::Inspect(no_connection(&survey, None)));
    }
    let mut text = header(&survey);
    if streams {
        if shown == 0 {
            return Err(InspectInterrupted::Inspect(match selection {
                Selection::Port(p) => no_connection(&survey, Some(*p)),
                _ => InspectError::NoConnection {
                    path: survey.path.display().to_string(),
                    port: None,
                    unread: format!(
                        " numbered {}; it has {}",
                        describe_numbers(selection),
                        plural(survey.connections, "connection", "connections")
                    ),
                },
            }));
        }
        text.insert(0, '\n');
    }
    if survey.lines.is_empty() {
        text.push_str(&summary(&survey, width));
        if !streams {
            let _ = writeln!(
                text,
                "\nMore than {} connections: this is the summary.\n`--connection N`, `--port P` or `--all` show connections in full.",
                survey::DETAIL_UP_TO
            );
        }
    } else {
        for line in &survey.lines {
            text.push_str(&connection_line(line, width));
        }
    }
    for h in held {
        text.push_str(&h);
    }
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(InspectInterrupted::Write)
}

fn describe_numbers(selection: &Selection) -> String {
    match selection {
        Selection::Numbers(n) => n
            .iter()
            .map(|n| format!("#{n}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// Why `inspect` ended without its whole output.
#[derive(Debug, thiserror::Error)]
pub enum InspectInterrupted {
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// Writing the output failed (a closed pipe is the reader's choice).
    #[error("cannot write to stdout: {0}")]
    Write(std::io::Error),
}

/// `harness diff`: the differences between the main connections of `a` and
/// `b` under the matrix's field policies.
pub fn diff(a: &Capture, b: &Capture, port: Option<u16>) -> Result<Vec<Difference>, InspectError> {
    let (ca, cb) = (a.main_connection(port)?, b.main_connection(port)?);
    Ok(signature::compare(
        &signature::signature(ca),
        &signature::signature(cb),
        &[],
    ))
}

pub fn render_diff(
    a: &Capture,
    b: &Capture,
    port: Option<u16>,
) -> Result<(String, bool), InspectError> {
    let (ca, cb) = (a.main_connection(port)?, b.main_connection(port)?);
    let (sa, sb) = (signature::signature(ca), signature::signature(cb));
    let differences = signature::compare(&sa, &sb, &[]);
    let mut out = String::new();
    let _ = writeln!(out, "A: {}  {}", a.path.display(), ca.label());
    let _ = writeln!(out, "B: {}  {}\n", b.path.display(), cb.label());
    out.push_str(&terminal::signature_table(&[
        ("A".into(), &sa, &[]),
        ("B".into(), &sb, &differences),
    ]));
    if differences.is_empty() {
        let _ = writeln!(
            out,
            "\nThe same under the field policies (see `harness policy`)."
        );
    } else {
        let _ = writeln!(
            out,
            "\n{} field(s) differ (frame numbers are B's):\n",
            differences.len()
        );
        out.push_str(&terminal::differences_table(&differences, "A", "B"));
    }
    Ok((out, differences.is_empty()))
}

/// `harness show`: two ladders side by side, the differing handshake fields
/// marked, then the differences.
pub fn render_show(a: &Capture, b: &Capture, paint: Paint) -> Result<String, InspectError> {
    let (ca, cb) = (a.main_connection(None)?, b.main_connection(None)?);
    let title = |c: &Capture| c.path.display().to_string();
    let mut out = ladder::render_side_by_side((&title(a), ca), (&title(b), cb), paint);
    let differences = signature::compare(&signature::signature(ca), &signature::signature(cb), &[]);
    if differences.is_empty() {
        let _ = writeln!(out, "\nThe same under the field policies.");
    } else {
        let _ = writeln!(out, "\nDiffering fields (left → right):\n");
        out.push_str(&terminal::differences_table(&differences, "left", "right"));
    }
    Ok(out)
}
