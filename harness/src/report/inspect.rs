//! Any capture, explained: `harness inspect`, `harness diff` and
//! `harness show` work on pcap or pcapng files, including ones a user saved
//! from Wireshark or tcpdump, with the same dissection, field policies and
//! ladders as the matrix.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::capture;
use crate::report::ladder::{self, Paint};
use crate::report::terminal;
use crate::verdict::signature::{self, Difference};
use wire::conversation::{self, Connection, Direction};
use wire::dissect::{self, DissectError};

/// A capture file read and taken apart.
pub struct Capture {
    pub path: PathBuf,
    pub link: dissect::LinkType,
    pub frames: usize,
    pub connections: Vec<Connection>,
    pub malformed: Vec<DissectError>,
}

/// Why a capture cannot be explained; each names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{0}; give a pcap or pcapng file (Wireshark, tcpdump and the harness write both)")]
    Read(String),
    #[error("{path} holds no TCP connection{}{unread}", match port { Some(p) => format!(" on port {p}; run without --port to list them"), None => String::new() })]
    NoConnection {
        path: String,
        port: Option<u16>,
        /// What could not be read, when something could not: the reason
        /// there may be no connection.
        unread: String,
    },
}

pub fn load(path: &Path) -> Result<Capture, InspectError> {
    let (link, frames) = capture::read_file(path).map_err(|e| InspectError::Read(e.to_string()))?;
    let (segments, malformed) = dissect::dissect_all(link, &frames);
    Ok(Capture {
        path: path.to_path_buf(),
        link,
        frames: frames.len(),
        connections: conversation::build(&segments),
        malformed,
    })
}

impl Capture {
    /// The connections on `port` (either end), or all of them.
    pub fn select(&self, port: Option<u16>) -> Result<Vec<&Connection>, InspectError> {
        let chosen: Vec<&Connection> = self
            .connections
            .iter()
            .filter(|c| port.is_none_or(|p| c.client.port() == p || c.server.port() == p))
            .collect();
        if chosen.is_empty() {
            return Err(InspectError::NoConnection {
                path: self.path.display().to_string(),
                port,
                unread: match self.malformed.first() {
                    Some(first) => format!(
                        " that could be read: {} of {} frames could not be dissected (first, {first})",
                        self.malformed.len(),
                        self.frames
                    ),
                    None => String::new(),
                },
            });
        }
        Ok(chosen)
    }

    /// The connection to compare: the first established one, else the
    /// first refused attempt, on `port` if given (the rule a cell uses).
    pub fn main_connection(&self, port: Option<u16>) -> Result<&Connection, InspectError> {
        let chosen = self.select(port)?;
        Ok(
            crate::verdict::signature::compared_connection(chosen.iter().copied(), false)
                .map_or(chosen[0], |(_, c)| c),
        )
    }
}

fn outcome(c: &Connection) -> String {
    let state = if c.joined_mid_stream {
        "joined mid-stream (no SYN captured)"
    } else if c.refused() {
        "refused"
    } else if c.established() {
        "established"
    } else {
        "not answered"
    };
    let close = if !c.close.resets.is_empty() {
        "reset".to_string()
    } else {
        match c.close.first_fin {
            Some(Direction::ClientToServer) => "closed, client first".into(),
            Some(Direction::ServerToClient) => "closed, server first".into(),
            None => "not closed".into(),
        }
    };
    let frames = match (c.segments.first(), c.segments.last()) {
        (Some(a), Some(b)) => format!("frames {}-{}", a.segment.frame, b.segment.frame),
        _ => String::new(),
    };
    format!(
        "{state}, {} bytes client→server, {} bytes server→client, {close}, {} segments, {frames}",
        c.client_stream.bytes.len(),
        c.server_stream.bytes.len(),
        c.segments.len()
    )
}

/// `harness inspect`: the connections, then for each (or the one on
/// `port`) its compared fields and its ladder.
pub fn render_inspect(capture: &Capture, port: Option<u16>) -> Result<String, InspectError> {
    let chosen = capture.select(port)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} frames, link type {:?}, {} TCP connection{}",
        capture.path.display(),
        capture.frames,
        capture.link,
        capture.connections.len(),
        if capture.connections.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    for e in &capture.malformed {
        let _ = writeln!(out, "  not dissected: {e}");
    }
    for (n, c) in capture.connections.iter().enumerate() {
        let _ = writeln!(out, "  #{} {}  {}", n + 1, c.label(), outcome(c));
    }
    for c in chosen {
        let n = capture
            .connections
            .iter()
            .position(|x| std::ptr::eq(x, c))
            .map_or(0, |i| i + 1);
        let _ = writeln!(out, "\n== connection #{n}: {}\n", c.label());
        if c.established() || c.refused() {
            let sig = signature::signature(c);
            out.push_str(&terminal::signature_table(&[(format!("#{n}"), &sig, &[])]));
            out.push('\n');
        }
        out.push_str(&ladder::render(c));
    }
    Ok(out)
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
