//! `harness run --list`: the implementations and scenarios, with what each
//! supports, before anything runs.

use crate::suite::manifest::{Locations, Manifest};
use crate::suite::plan::reference_of;
use crate::suite::scenario::Scenario;

use super::terminal::table;

/// The implementations and scenarios, with what each supports: the rows
/// and columns of the matrix before anything runs.
pub fn render(manifest: &Manifest, scenarios: &[Scenario], at: &Locations<'_>) -> String {
    let mut rows = vec![
        ["implementation", "language", "roles", "features", "status"]
            .map(String::from)
            .to_vec(),
    ];
    for i in &manifest.implementations {
        let roles: Vec<&str> = [
            ("server", i.server.is_some()),
            ("client", i.client.is_some()),
        ]
        .into_iter()
        .filter_map(|(r, has)| has.then_some(r))
        .collect();
        let mut missing: Vec<String> = i
            .missing_programs()
            .iter()
            .map(|p| format!("missing {p}"))
            .collect();
        missing.extend(
            [true, false]
                .iter()
                .filter_map(|&server| i.missing_command(server, at)),
        );
        missing.dedup();
        let mut status = if missing.is_empty() {
            "available".to_string()
        } else {
            format!("UNAVAILABLE: {}", missing.join("; "))
        };
        if i.name == manifest.reference {
            status.push_str(", the reference");
        }
        let features: Vec<&str> = i.features.iter().map(String::as_str).collect();
        rows.push(vec![
            i.name.clone(),
            i.language.clone(),
            roles.join(", "),
            if features.is_empty() {
                "-".into()
            } else {
                features.join(", ")
            },
            status,
        ]);
    }
    let mut out = format!(
        "Implementations ({}):\n\n{}",
        manifest.path.display(),
        table(&rows)
    );
    let mut rows = vec![[
        "scenario",
        "sends",
        "on",
        "expects",
        "network",
        "reference",
        "unsupported by",
        "description",
    ]
    .map(String::from)
    .to_vec()];
    for s in scenarios {
        let unsupported: Vec<&str> = manifest
            .implementations
            .iter()
            .filter(|i| {
                i.unsupported_reason(&s.name, &s.requires, !s.conditions.is_empty())
                    .is_some()
            })
            .map(|i| i.name.as_str())
            .collect();
        rows.push(vec![
            s.name.clone(),
            format!("{} bytes", s.message.len()),
            match s.port {
                Some(p) => format!("{} port {p}", s.host),
                None => s.host.clone(),
            },
            format!("{:?}", s.outcome).to_lowercase(),
            if s.conditions.is_empty() {
                "-".into()
            } else {
                s.conditions.describe()
            },
            reference_of(manifest, s).to_string(),
            if unsupported.is_empty() {
                "-".into()
            } else {
                unsupported.join(", ")
            },
            s.description.clone(),
        ]);
    }
    out.push_str("\nScenarios:\n\n");
    out.push_str(&table(&rows));
    out
}
