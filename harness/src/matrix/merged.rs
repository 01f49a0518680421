//! One pcapng per scenario with every pairing on its own interface.

use std::path::Path;

use wire::savefile;

use crate::capture::annotate;
use crate::verdict::result::PairingResult;

/// Writes one pcapng per scenario with every pairing on its own interface,
/// named like the pairing's folder (`python__rust`), so one Wireshark
/// window shows them all and `frame.interface_name == "python__rust"`
/// selects one. Returns the file, relative to `artifacts_root`.
pub fn write_merged(
    scenario: &str,
    results: &[&PairingResult],
    artifacts_root: &Path,
) -> std::io::Result<String> {
    let interfaces: Vec<savefile::Interface<'_>> = results
        .iter()
        .filter_map(|r| {
            Some(annotate::annotated_interface(
                r.id.folder_name(),
                r.id.description(),
                r.link?,
                &r.frames,
                &r.connections,
            ))
        })
        .collect();
    let relative = format!("{scenario}/all-pairings.pcapng");
    let section = format!(
        "scenario {scenario}: every pairing, one interface each — captured by the tcp-conformance harness"
    );
    savefile::write_atomically(
        &artifacts_root.join(&relative),
        &savefile::pcapng_bytes(&section, &interfaces),
    )?;
    Ok(relative)
}
