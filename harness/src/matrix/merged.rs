//! One pcapng per scenario with every pairing on its own interface.

use std::path::{Path, PathBuf};

use wire::savefile;

use crate::verdict::result::PairingResult;

/// Writes one pcapng per scenario with every pairing on its own interface,
/// named like the pairing's folder (`python__rust`), so one Wireshark
/// window shows them all and `frame.interface_name == "python__rust"`
/// selects one. Returns the file, relative to `artifacts_root`.
///
/// It is made from the cells' annotated captures on disk, read back a
/// block at a time, so no cell's frames stay in memory for it; a cell whose
/// capture could not be written is missing here too (its own error says
/// why).
pub fn write_merged(
    scenario: &str,
    results: &[&PairingResult],
    artifacts_root: &Path,
) -> std::io::Result<String> {
    let files: Vec<(PathBuf, &PairingResult)> = results
        .iter()
        .filter_map(|r| Some((artifacts_root.join(r.pcapng_file.as_ref()?), *r)))
        .collect();
    let inputs: Vec<savefile::MergeInput<'_>> = files
        .iter()
        .map(|(file, r)| savefile::MergeInput {
            file,
            name: r.id.folder_name(),
            description: r.id.description(),
        })
        .collect();
    let relative = format!("{scenario}/all-pairings.pcapng");
    let section = format!(
        "scenario {scenario}: every pairing, one interface each — captured by the tcp-conformance harness"
    );
    savefile::merge_pcapng(&section, &inputs, &artifacts_root.join(&relative))?;
    Ok(relative)
}
