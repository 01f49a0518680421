//! A capture file of any size, reduced as it is read: its connections
//! grouped by handshake signature (as p0f groups hosts by their SYN), the
//! ones that stand out, and the few a user asked to see in full.
//!
//! The file is read one frame at a time ([`wire::capfile`]) into a
//! [`ConversationBuilder`] with a bounded [`Retention`]; a connection is
//! handed on and forgotten once the capture shows it over and quiet. So
//! memory follows the connections still open and the groups found, never
//! the file: a 1 GiB capture is read in the space of a few megabytes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use wire::capfile::{self, CaptureFile, Format, Next};
use wire::conversation::{Connection, ConversationBuilder, Retention};
use wire::dissect::{self, DissectError};

use super::signature::{self, SegmentSignature};

/// Up to this many connections, `inspect` shows every one in full; above
/// it, the summary by signature (see `--all`).
pub const DETAIL_UP_TO: usize = 10;

/// Outliers listed one per line; the rest are counted by kind.
pub const OUTLIERS_LISTED: usize = 20;

/// Distinct signatures kept; connections of any further one are counted
/// as "other signatures".
pub const GROUPS_KEPT: usize = 64;

/// Server ports named per group.
const PORTS_NAMED: usize = 8;

/// What `inspect` holds of each connection. The first segments carry the
/// handshake and the opening exchange, the last ones the teardown; a
/// stream is compared by its length and digest, so 64 KiB of it is plenty
/// to show.
pub const RETENTION: Retention = Retention {
    stream_bytes: 64 * 1024,
    head_segments: 200,
    tail_segments: 50,
    held_bytes: 4 * 1024 * 1024,
};

/// Frames after its last segment before a finished connection is handed
/// on: a straggler (a duplicate ACK, a late RST) still finds it.
const QUIET_FRAMES: usize = 512;

/// How often (in frames) finished connections are looked for.
const RETIRE_EVERY: usize = 256;

/// Which connections are shown in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// All of them when there are at most [`DETAIL_UP_TO`], else none.
    Auto,
    All,
    /// These connection numbers (1 is the first connection seen).
    Numbers(Vec<usize>),
    /// The connections with this port at either end.
    Port(u16),
}

impl Selection {
    fn wants(&self, number: usize, c: &Connection) -> bool {
        match self {
            Selection::Auto | Selection::All => true,
            Selection::Numbers(n) => n.contains(&number),
            Selection::Port(p) => c.client.port() == *p || c.server.port() == *p,
        }
    }

    /// Whether chosen connections are shown as soon as they are over,
    /// rather than all at the end.
    pub fn streams(&self) -> bool {
        !matches!(self, Selection::Auto)
    }
}

/// Connections that share one handshake signature.
#[derive(Debug, Clone)]
pub struct Group {
    /// The SYN, SYN/ACK and ACK under the field policies, frames left out.
    pub handshake: Vec<SegmentSignature>,
    pub count: usize,
    /// The first [`PORTS_NAMED`] server ports, and whether there were more.
    pub server_ports: BTreeSet<u16>,
    pub more_ports: bool,
    /// The first connection of the group and its SYN's frame.
    pub example: (usize, usize),
}

/// Why a connection stands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OutlierKind {
    Refused,
    NotAnswered,
    RetransmittedSyn,
    Reset,
    MidStream,
    Unfinished,
}

impl OutlierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutlierKind::Refused => "refused",
            OutlierKind::NotAnswered => "not answered",
            OutlierKind::RetransmittedSyn => "retransmitted SYN",
            OutlierKind::Reset => "reset",
            OutlierKind::MidStream => "joined mid-stream",
            OutlierKind::Unfinished => "unfinished",
        }
    }

    /// Every kind a connection shows.
    fn of(c: &Connection) -> Vec<OutlierKind> {
        let mut kinds = Vec::new();
        if c.joined_mid_stream {
            kinds.push(OutlierKind::MidStream);
        } else if c.refused() {
            kinds.push(OutlierKind::Refused);
        } else if !c.established() {
            kinds.push(OutlierKind::NotAnswered);
        }
        if c.syn_count() > 1 {
            kinds.push(OutlierKind::RetransmittedSyn);
        }
        if c.established() && !c.close.resets.is_empty() {
            kinds.push(OutlierKind::Reset);
        }
        if !c.close.complete && !c.refused() && c.established() {
            kinds.push(OutlierKind::Unfinished);
        }
        kinds
    }
}

/// One connection in a line.
#[derive(Debug, Clone)]
pub struct Line {
    pub number: usize,
    /// "client → server".
    pub label: String,
    /// The tunnels it came through, in words, when it did.
    pub tunnel: Option<String>,
    pub outcome: String,
    pub kinds: Vec<OutlierKind>,
}

/// What reading a capture found.
#[derive(Debug, Clone)]
pub struct Survey {
    pub path: PathBuf,
    pub format: Format,
    /// The link types of its interfaces (`LINKTYPE_*` numbers), each once.
    pub links: Vec<i32>,
    pub frames: usize,
    /// Frames that could not be dissected, and the first of them.
    pub unread: usize,
    pub first_unread: Option<DissectError>,
    /// Why reading stopped before the end of the file, if it did.
    pub stopped: Option<String>,
    pub connections: usize,
    /// Segments that came after their connection was over and forgotten.
    pub late_segments: usize,
    /// IPv4 fragments whose packet never completed (timed out, evicted by
    /// the reassembly's bounds, or still waiting at the end).
    pub abandoned_fragments: usize,
    pub groups: Vec<Group>,
    /// Connections whose signature was not among the first [`GROUPS_KEPT`].
    pub other_signatures: usize,
    pub outliers: Vec<Line>,
    /// Outliers by kind, listed or not.
    pub outlier_counts: Vec<(OutlierKind, usize)>,
    /// Every connection in a line, when there are at most [`DETAIL_UP_TO`].
    pub lines: Vec<Line>,
}

/// Why a capture cannot be surveyed at all.
#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    #[error("{path}: {source}; give a pcap or pcapng file (Wireshark, tcpdump and the harness write both)")]
    Read {
        path: String,
        source: capfile::ReadError,
    },
    #[error(
        "{path}: link type {dlt} is not supported; supported: {}",
        dissect::LinkType::supported()
    )]
    LinkType { path: String, dlt: i32 },
}

/// Reads `path` to its end, calling `show` for each chosen connection
/// (numbered from 1 in order of first segment) once the capture shows it
/// over, or at the end of the file; under [`Selection::Auto`], all of them
/// at the end when there are at most [`DETAIL_UP_TO`].
pub fn survey(
    path: &Path,
    selection: &Selection,
    mut show: impl FnMut(usize, &Connection),
) -> Result<Survey, SurveyError> {
    let read_error = |source| SurveyError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut file = CaptureFile::open(path).map_err(read_error)?;
    let mut survey = Survey {
        path: path.to_path_buf(),
        format: file.format(),
        links: Vec::new(),
        frames: 0,
        unread: 0,
        first_unread: None,
        stopped: None,
        connections: 0,
        late_segments: 0,
        abandoned_fragments: 0,
        groups: Vec::new(),
        other_signatures: 0,
        outliers: Vec::new(),
        outlier_counts: Vec::new(),
        lines: Vec::new(),
    };
    let mut builder = ConversationBuilder::with_retention(RETENTION);
    let mut held: Vec<(usize, Connection)> = Vec::new();
    let mut unsupported: Option<i32> = None;
    let mut dissected = 0usize;
    // One dissector for the file: it holds IPv4 fragments until their
    // packet is whole.
    let mut dissector = dissect::Dissector::default();
    loop {
        // Each frame is read where the file's reader holds it, and its
        // payload hashed from there: nothing is copied on the way.
        let number = file.frames() + 1;
        let (next, frame) = match file.next_view() {
            Ok(read) => read,
            Err(e) => {
                survey.stopped = Some(e.to_string());
                break;
            }
        };
        match next {
            Next::End => break,
            Next::Unreadable(problem) => {
                if unsupported.is_none() {
                    unsupported = file
                        .interfaces()
                        .iter()
                        .find(|i| i.link().is_none())
                        .map(|i| i.dlt);
                }
                survey.note_unread(DissectError {
                    frame: number,
                    problem,
                });
            }
            Next::Frame(link) => match dissector.dissect_view(link, number, &frame) {
                Ok(Some((segment, payload))) => {
                    dissected += 1;
                    builder.push_with_payload(segment, &payload)
                }
                Ok(None) => dissected += 1,
                Err(e) => survey.note_unread(e),
            },
        }
        if number % RETIRE_EVERY == 0 {
            for (n, c) in builder.take_finished(number, QUIET_FRAMES) {
                survey.take(n, c, selection, &mut held, &mut show);
            }
        }
    }
    survey.frames = file.frames();
    survey.links = capfile::distinct_links(file.interfaces());
    // Nothing read, and the reason is the link layer: say that, not "no
    // connection".
    if let (0, Some(dlt)) = (dissected, unsupported) {
        return Err(SurveyError::LinkType {
            path: path.display().to_string(),
            dlt,
        });
    }
    survey.late_segments = builder.late_segments();
    survey.abandoned_fragments = dissector.abandoned_fragments();
    for (n, c) in builder.finish_numbered() {
        survey.take(n, c, selection, &mut held, &mut show);
    }
    if survey.connections <= DETAIL_UP_TO {
        held.sort_by_key(|(n, _)| *n);
        survey.lines.sort_by_key(|l| l.number);
        for (n, c) in &held {
            show(*n, c);
        }
    } else {
        survey.lines.clear();
    }
    survey.outliers.sort_by_key(|l| l.number);
    Ok(survey)
}

impl Survey {
    fn note_unread(&mut self, error: DissectError) {
        self.unread += 1;
        self.first_unread.get_or_insert(error);
    }

    /// Counts, groups and (if chosen) shows one finished connection.
    fn take(
        &mut self,
        number: usize,
        c: Connection,
        selection: &Selection,
        held: &mut Vec<(usize, Connection)>,
        show: &mut impl FnMut(usize, &Connection),
    ) {
        self.connections += 1;
        let kinds = OutlierKind::of(&c);
        let line = || Line {
            number,
            label: c.endpoints(),
            tunnel: c.tunnel.clone(),
            outcome: outcome(&c),
            kinds: kinds.clone(),
        };
        if self.connections <= DETAIL_UP_TO {
            self.lines.push(line());
        }
        for kind in &kinds {
            match self.outlier_counts.iter_mut().find(|(k, _)| k == kind) {
                Some((_, n)) => *n += 1,
                None => self.outlier_counts.push((*kind, 1)),
            }
        }
        self.outlier_counts.sort();
        if !kinds.is_empty() && self.outliers.len() < OUTLIERS_LISTED {
            self.outliers.push(line());
        }
        if c.established() && !c.joined_mid_stream {
            self.group(number, &c);
        }
        if selection.wants(number, &c) {
            if selection.streams() {
                show(number, &c);
            } else if self.connections <= DETAIL_UP_TO {
                held.push((number, c));
            } else {
                // Too many for detail: the summary instead.
                held.clear();
            }
        }
    }

    fn group(&mut self, number: usize, c: &Connection) {
        let mut handshake = signature::signature(c).handshake;
        let example_frame = handshake
            .first()
            .and_then(|s| s.frame)
            .unwrap_or(c.frame_span().0);
        for s in &mut handshake {
            s.frame = None;
        }
        let port = c.server.port();
        let kept = self.groups.len();
        match self.groups.iter_mut().find(|g| g.handshake == handshake) {
            Some(g) => {
                g.count += 1;
                if g.server_ports.len() < PORTS_NAMED {
                    g.server_ports.insert(port);
                } else if !g.server_ports.contains(&port) {
                    g.more_ports = true;
                }
            }
            None if kept < GROUPS_KEPT => self.groups.push(Group {
                handshake,
                count: 1,
                server_ports: BTreeSet::from([port]),
                more_ports: false,
                example: (number, example_frame),
            }),
            None => self.other_signatures += 1,
        }
    }

    /// Connections with a full handshake, grouped or not.
    pub fn with_handshake(&self) -> usize {
        self.groups.iter().map(|g| g.count).sum::<usize>() + self.other_signatures
    }
}

/// A connection's state and size in a phrase.
pub fn outcome(c: &Connection) -> String {
    use wire::conversation::Direction;
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
    let (first, last) = c.frame_span();
    format!(
        "{state}, {} bytes client→server, {} bytes server→client, {close}, {} segments, frames {first}-{last}",
        c.client_stream.length,
        c.server_stream.length,
        c.segment_count(),
    )
}
