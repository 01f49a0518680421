//! What running one cell produced, and its analysis: the capture dissected
//! into connections, the checks run, the compared signature taken.

use wire::conversation::{Connection, ConversationBuilder, Retention};
use wire::dissect::{self, DissectError, Frame, LinkType};

use crate::calls::CellCalls;
use crate::capture::CaptureStats;
use crate::exec::process::Output;
use crate::exec::timing::StageTime;
use crate::policy::Field;
use crate::suite::manifest::{Implementation, ServerStdout};
use crate::suite::pairing::PairingId;
use crate::suite::scenario::Scenario;
use crate::verdict::checks::{self, Check, Evidence};
use crate::verdict::signature::{self, Signature};

/// What running one pairing produced, before any comparison.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct PairingResult {
    /// Which cell (written by the graded cell, not here).
    #[serde(skip)]
    pub id: PairingId,
    pub port: u16,
    /// Wall-clock time the cell took.
    pub seconds: f64,
    /// Relative to the artifacts root.
    pub dir: String,
    pub capture_file: Option<String>,
    /// Why the run could not complete, if it did not.
    pub error: Option<String>,
    pub checks: Vec<Check>,
    pub stats: Option<CaptureStats>,
    #[serde(skip)]
    pub connections: Vec<Connection>,
    pub signature: Option<Signature>,
    /// The annotated pcapng, relative to the artifacts root.
    pub pcapng_file: Option<String>,
    pub server_exit: Option<String>,
    pub client_exit: Option<String>,
    /// Which connection the wire comparison is of, when the capture holds
    /// more than one attempt ("connection 2 of 2 (…), the established one").
    pub compared: Option<String>,
    /// Each program's socket calls, in a scenario that records them.
    #[serde(default, skip_serializing_if = "CellCalls::is_empty")]
    pub calls: CellCalls,
    /// What each of the scenario's segment rules did (`[network]`), read
    /// from its counter after the cell; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<crate::exec::conditions::Applied>>,
    /// Where the cell's time went, stage by stage (not read back by
    /// `harness merge`: each shard's summary keeps its own).
    #[serde(skip_deserializing)]
    pub timings: Vec<StageTime>,
}

impl PairingResult {
    /// A pairing that could not start, with the reason.
    pub fn not_started(
        scenario: &Scenario,
        server: Option<&Implementation>,
        client: &Implementation,
        reason: String,
    ) -> PairingResult {
        let id = PairingId::new(
            &scenario.name,
            server.map(|s| s.name.as_str()),
            &client.name,
        );
        PairingResult {
            dir: id.folder(),
            id,
            port: scenario.port.unwrap_or(0),
            seconds: 0.0,
            capture_file: None,
            error: Some(reason),
            checks: Vec::new(),
            stats: None,
            connections: Vec::new(),
            signature: None,
            pcapng_file: None,
            server_exit: None,
            client_exit: None,
            compared: None,
            calls: CellCalls::default(),
            conditions: None,
            timings: Vec::new(),
        }
    }

    /// Adds `error` to what went wrong, after anything already there: a
    /// cell keeps every reason, in the order they came.
    pub fn add_error(&mut self, error: impl Into<String>) {
        let error = error.into();
        self.error = Some(match self.error.take() {
            Some(earlier) => format!("{earlier}; {error}"),
            None => error,
        });
    }

    pub fn passed_checks(&self) -> bool {
        self.error.is_none() && self.checks.iter().all(|c| c.passed)
    }
}

/// What one cell left to judge: its capture and its programs' output.
pub struct CellRecord<'a> {
    pub link: LinkType,
    pub frames: &'a [Frame],
    pub server: Option<&'a Output>,
    pub client: Option<&'a Output>,
    /// The clients after the first (a scenario with `clients` > 1).
    pub more_clients: &'a [Output],
    /// libpcap's counters; `None` when the capture did not stop cleanly.
    pub stats: Option<CaptureStats>,
    /// Whether the teardown was seen before the drain deadline.
    pub teardown_seen: bool,
    /// What the server's stdout holds.
    pub server_stdout: ServerStdout,
}

/// What a cell holds of its connections: every segment (the ladders show
/// them all), and of each stream the first MiB, which is the whole of every
/// message in the default suite. A longer stream is checked by its length
/// and digest, so a 1 GiB message is not held a second time.
pub const CELL_RETENTION: Retention = Retention {
    stream_bytes: 1 << 20,
    ..Retention::ALL
};

/// A cell's connections from its frames: each frame dissected and placed
/// at once, so a segment's payload is held only until it is in its
/// stream; only this pairing's port, so a stray packet that slipped in
/// before the filter was installed does not become a connection.
fn build_connections(
    link: LinkType,
    frames: &[Frame],
    port: u16,
) -> (Vec<Connection>, Vec<DissectError>) {
    let mut builder = ConversationBuilder::with_retention(CELL_RETENTION);
    let mut malformed: Vec<DissectError> = Vec::new();
    for (index, frame) in frames.iter().enumerate() {
        match dissect::dissect(link, index + 1, frame) {
            Ok(Some(s)) if s.src.port() == port || s.dst.port() == port => builder.push(s),
            Ok(_) => {}
            Err(e) => malformed.push(e),
        }
    }
    (builder.finish(), malformed)
}

/// The connections of a cell's saved capture, headers only, as its
/// analysis built them: for `harness merge`, which reads cells back from
/// their artifacts to draw their ladders.
pub fn connections_from_file(path: &std::path::Path, port: u16) -> Vec<Connection> {
    let Ok((link, frames)) = crate::capture::read_file(path) else {
        return Vec::new();
    };
    let (mut connections, _) = build_connections(link, &frames, port);
    for c in &mut connections {
        c.drop_payloads();
    }
    connections
}

/// What became of each client after the first, as one value compared with
/// the reference's: its connection's fate on the wire (client k's is the
/// k-th attempt, as they start one after another), how it exited and what
/// it printed. "client 2: established, then reset by the server, exit 0,
/// printed "Sending data..."; client 3: refused after its SYN was sent 2
/// times, exit 1, printed nothing".
fn other_clients(connections: &[Connection], more: &[Output]) -> String {
    let mut attempts = checks::attempts(connections).skip(1);
    more.iter()
        .enumerate()
        .map(|(i, out)| {
            let fate = attempts
                .next()
                .map_or_else(|| "no connection attempt".to_string(), checks::fate);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let printed = match stdout.trim_end() {
                "" => "nothing".to_string(),
                text => format!("{text:?}"),
            };
            format!(
                "client {}: {fate}, {}, printed {printed}",
                i + 2,
                out.status_text()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Dissects what a cell captured, runs the checks and takes the signature
/// that is compared with the reference.
pub fn analyse(result: &mut PairingResult, record: &CellRecord<'_>, scenario: &Scenario) {
    let (connections, malformed) = build_connections(record.link, record.frames, result.port);
    let evidence = Evidence {
        message: &scenario.message,
        outcome: scenario.outcome,
        connections: &connections,
        server: record.server,
        client: record.client,
        more_clients: record.more_clients,
        server_stdout: record.server_stdout,
        stats: record.stats,
        teardown_seen: record.teardown_seen,
        malformed: &malformed,
        conditions: result.conditions.as_deref(),
    };
    result.checks = checks::run_all(&evidence);
    let compared = signature::compared_connection(
        connections.iter(),
        scenario.outcome == crate::suite::scenario::Outcome::Refused,
    );
    result.signature = compared.map(|(_, c)| {
        let mut signature = signature::signature(c);
        // How the programs ended belongs to the conversation's meaning: a
        // port that fails differently after a loss or a reset differs.
        signature.meaning.extend([
            (Field::ServerExit, record.server.map(Output::status_text)),
            (Field::ClientExit, record.client.map(Output::status_text)),
        ]);
        if !record.more_clients.is_empty() {
            signature.meaning.push((
                Field::OtherClients,
                Some(other_clients(&connections, record.more_clients)),
            ));
        }
        signature
    });
    result.compared = compared
        .filter(|_| connections.len() > 1)
        .map(|(index, c)| {
            format!(
                "connection {} of {} ({}), the {} one",
                index + 1,
                connections.len(),
                c.label(),
                if c.established() {
                    "established"
                } else {
                    "refused"
                }
            )
        });
    // Checked and hashed: from here on only headers are needed.
    let mut connections = connections;
    for c in &mut connections {
        c.drop_payloads();
    }
    result.connections = connections;
}
