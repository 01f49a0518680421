//! The name of one cell: scenario × server × client.
//!
//! Every place that shows, files or looks up a cell (the report's labels,
//! the artifact folders, the baseline's keys, Wireshark's filter on the
//! merged capture) goes through this one type, so the forms cannot drift
//! apart.

use std::fmt;

/// The server column of a scenario where no server runs (refused), as the
/// reports, folders and baseline write it; no implementation may take this
/// name. In the program it is `None`, never this string.
pub const NO_SERVER: &str = "none";

/// Which cell: a scenario, its server (none where nobody listens) and its
/// client.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(from = "RawPairingId")]
pub struct PairingId {
    pub scenario: String,
    pub server: Option<String>,
    pub client: String,
}

impl PairingId {
    pub fn new(scenario: &str, server: Option<&str>, client: &str) -> PairingId {
        PairingId {
            scenario: scenario.to_string(),
            server: server.map(str::to_string),
            client: client.to_string(),
        }
    }

    /// Whether this is its scenario's reference pairing: `reference` as
    /// client, and as server where there is one.
    pub fn is_reference(&self, reference: &str) -> bool {
        self.client == reference && self.server.as_deref().is_none_or(|s| s == reference)
    }

    /// The server's name, or `none` where no server runs.
    pub fn server_name(&self) -> &str {
        self.server.as_deref().unwrap_or(NO_SERVER)
    }

    /// "python server × rust client": what people read.
    pub fn label(&self) -> String {
        format!("{} server × {} client", self.server_name(), self.client)
    }

    /// "scenario hello: python server × rust client", for file comments.
    pub fn description(&self) -> String {
        format!("scenario {}: {}", self.scenario, self.label())
    }

    /// "python__rust": the cell's folder inside its scenario's, and its
    /// interface name in the scenario's merged pcapng.
    pub fn folder_name(&self) -> String {
        format!("{}__{}", self.server_name(), self.client)
    }

    /// "hello/python__rust": the cell's folder inside a run's artifacts,
    /// and what `harness show` accepts.
    pub fn folder(&self) -> String {
        format!("{}/{}", self.scenario, self.folder_name())
    }

    /// "python × rust": the key of the cell inside its scenario's table in
    /// the baseline.
    pub fn baseline_key(&self) -> String {
        format!("{} × {}", self.server_name(), self.client)
    }

    /// The Wireshark display filter that selects this cell in its
    /// scenario's merged pcapng.
    pub fn merged_filter(&self) -> String {
        format!("frame.interface_name == \"{}\"", self.folder_name())
    }
}

impl fmt::Display for PairingId {
    /// "hello / python server × rust client", for progress lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}", self.scenario, self.label())
    }
}

/// Written as three strings, `server` being `none` where no server runs,
/// as summary.json has always had them.
/// A pairing id as `summary.json` writes it, server `none` for no server.
#[derive(serde::Deserialize)]
struct RawPairingId {
    scenario: String,
    server: String,
    client: String,
}

impl From<RawPairingId> for PairingId {
    fn from(raw: RawPairingId) -> PairingId {
        let server = (raw.server != NO_SERVER).then_some(raw.server);
        PairingId::new(&raw.scenario, server.as_deref(), &raw.client)
    }
}

/// Written flattened into its cell: three string properties.
impl schemars::JsonSchema for PairingId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PairingId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "properties": {
                "scenario": { "type": "string", "description": "the scenario's name" },
                "server": { "type": "string", "description": "the server's implementation, or \"none\" in a scenario without a server" },
                "client": { "type": "string", "description": "the client's implementation" }
            },
            "required": ["scenario", "server", "client"]
        })
    }
}

impl serde::Serialize for PairingId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("PairingId", 3)?;
        out.serialize_field("scenario", &self.scenario)?;
        out.serialize_field("server", self.server_name())?;
        out.serialize_field("client", &self.client)?;
        out.end()
    }
}

/// The servers (rows) and clients (columns) of a scenario's cells, each
/// once, in the order the cells come: how every report draws a matrix.
pub fn servers_and_clients<'a>(
    ids: impl IntoIterator<Item = &'a PairingId>,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut servers: Vec<&str> = Vec::new();
    let mut clients: Vec<&str> = Vec::new();
    for id in ids {
        if !servers.contains(&id.server_name()) {
            servers.push(id.server_name());
        }
        if !clients.contains(&id.client.as_str()) {
            clients.push(&id.client);
        }
    }
    (servers, clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_cell_s_name() {
        let id = PairingId::new("hello", Some("python"), "rust");
        assert_eq!(id.label(), "python server × rust client");
        assert_eq!(id.folder(), "hello/python__rust");
        assert_eq!(id.baseline_key(), "python × rust");
        assert_eq!(
            id.merged_filter(),
            "frame.interface_name == \"python__rust\""
        );
        assert_eq!(id.to_string(), "hello / python server × rust client");
        assert!(PairingId::new("hello", Some("rust"), "rust").is_reference("rust"));
        assert!(!id.is_reference("python") && !id.is_reference("rust"));
        let refused = PairingId::new("refused", None, "python");
        assert!(refused.is_reference("python") && !refused.is_reference("rust"));
        assert_eq!(refused.folder(), "refused/none__python");
        assert_eq!(
            serde_json::to_value(&refused).unwrap(),
            serde_json::json!({"scenario": "refused", "server": "none", "client": "python"})
        );
    }
}
