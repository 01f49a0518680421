//! What a cell leaves in its folder, written in one place: the message
//! its client sent, each program's output and exit, the capture as pcap
//! and as annotated pcapng, and where strace writes the calls.
//!
//! Every save answers with a value: the file's path relative to the
//! artifacts root (as summary.json names it), or one line naming the file
//! and the error. The cell collects those lines and reports them once, so
//! a full disk is the cell's error with every file it lost, never a panic
//! and never a silent gap.

use std::path::{Path, PathBuf};

use wire::dissect::{Frame, LinkType};
use wire::savefile::{self, Interface};

use crate::capture;
use crate::exec::process::Output;
use crate::suite::message::Message;

/// The message a scenario's clients send, in the scenario's folder and in
/// each cell's.
pub const MESSAGE_FILE: &str = "message.bin";

/// Writes a scenario's message into its folder, once per run and before
/// any of its cells: the cells link to it.
pub fn write_scenario_message(scenario_dir: &Path, message: &Message) -> std::io::Result<()> {
    std::fs::create_dir_all(scenario_dir)?;
    message.write_to(&scenario_dir.join(MESSAGE_FILE))
}

/// One cell's folder.
#[derive(Clone)]
pub struct CellFolder {
    /// Where it is.
    pub dir: PathBuf,
    /// Where it is below the artifacts root (`SCENARIO/SERVER__CLIENT`).
    relative: String,
}

impl CellFolder {
    /// Makes the folder `relative` below `root`.
    pub fn create(root: &Path, relative: &str) -> Result<CellFolder, String> {
        let dir = root.join(relative);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create artifacts directory {}: {e}", dir.display()))?;
        Ok(CellFolder {
            dir,
            relative: relative.to_string(),
        })
    }

    /// `name` in this folder, as summary.json names it.
    fn named(&self, name: &str) -> String {
        format!("{}/{name}", self.relative)
    }

    /// Puts the message in the folder and returns its path: a hard link to
    /// the scenario's copy when that holds this message, else a file of
    /// its own. A cell folder stays complete on its own, and a run of
    /// 1 MiB messages does not write each one again (nor, on ext4, pay a
    /// new inode per cell).
    pub fn place_message(&self, message: &Message) -> Result<PathBuf, String> {
        let file = self.dir.join(MESSAGE_FILE);
        place_message(&file, message)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        Ok(file)
    }

    /// Saves a program's stdout, stderr and how it ended as `WHO.stdout`,
    /// `WHO.stderr` and `WHO.exit`; one line per file not saved.
    pub fn save_output(&self, who: &str, out: &Output) -> Vec<String> {
        let exit = format!("{}\n", out.status_text());
        [
            (format!("{who}.stdout"), out.stdout.as_slice()),
            (format!("{who}.stderr"), out.stderr.as_slice()),
            (format!("{who}.exit"), exit.as_bytes()),
        ]
        .into_iter()
        .filter_map(|(name, bytes)| {
            std::fs::write(self.dir.join(&name), bytes)
                .err()
                .map(|e| format!("{name}: {e}"))
        })
        .collect()
    }

    /// Saves the frames as `capture.pcap`, as libpcap captured them.
    pub fn save_pcap(&self, link: LinkType, frames: &[Frame]) -> Result<String, String> {
        capture::save_pcap(&self.dir.join("capture.pcap"), link, frames)
            .map(|()| self.named("capture.pcap"))
            .map_err(|e| e.to_string())
    }

    /// Saves the annotated copy as `capture.pcapng`.
    pub fn save_pcapng(&self, section: &str, interface: Interface) -> Result<String, String> {
        let path = self.dir.join("capture.pcapng");
        savefile::save_pcapng(&path, section, &[interface])
            .map(|()| self.named("capture.pcapng"))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Where strace writes `who`'s calls: the path to give it, and the
    /// name summary.json uses.
    pub fn trace(&self, who: &str) -> (PathBuf, String) {
        let name = format!("{who}.strace");
        (self.dir.join(&name), self.named(&name))
    }
}

/// Puts the message at `cell_file` (see [`CellFolder::place_message`]).
fn place_message(cell_file: &Path, message: &Message) -> std::io::Result<()> {
    match std::fs::remove_file(cell_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let shared = cell_file
        .parent()
        .and_then(Path::parent)
        .map(|scenario_dir| scenario_dir.join(MESSAGE_FILE));
    // Its bytes are checked (length, then content) so that a copy left by
    // an older run into the same folder is never taken for this one's,
    // even one of the same length; write_scenario_message rewrites it at
    // the start of every run.
    if let Some(shared) = shared.filter(|f| message.is_in(f)) {
        if std::fs::hard_link(&shared, cell_file).is_ok() {
            return Ok(());
        }
    }
    message.write_to(cell_file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A cell's message is the scenario's, linked: one inode, one write.
    #[test]
    fn a_cells_message_links_to_its_scenarios() {
        let root = tempfile::tempdir().unwrap();
        let scenario = root.path().join("large");
        let hello = Message::from(&b"hello"[..]);
        write_scenario_message(&scenario, &hello).unwrap();
        let cell = scenario.join("python__rust");
        std::fs::create_dir_all(&cell).unwrap();
        let file = cell.join(MESSAGE_FILE);
        place_message(&file, &hello).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"hello");
        let (a, b) = (
            std::fs::metadata(&file).unwrap(),
            std::fs::metadata(scenario.join(MESSAGE_FILE)).unwrap(),
        );
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        // Placed again (a rerun into the same folder): still one link.
        place_message(&file, &hello).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().nlink(), 2);
    }

    /// A scenario copy that is not this message (left by an older run) is
    /// never taken, even one of the same length: the cell gets a file of
    /// its own with the right bytes.
    #[test]
    fn a_stale_scenario_message_is_not_linked() {
        for stale in [&b"an older, longer message"[..], &b"Hello server?"[..]] {
            let root = tempfile::tempdir().unwrap();
            let scenario = root.path().join("hello");
            write_scenario_message(&scenario, &Message::from(stale)).unwrap();
            let cell = scenario.join("rust__rust");
            std::fs::create_dir_all(&cell).unwrap();
            let file = cell.join(MESSAGE_FILE);
            std::fs::write(&file, b"old cell copy").unwrap();
            place_message(&file, &Message::from(&b"Hello server!"[..])).unwrap();
            assert_eq!(std::fs::read(&file).unwrap(), b"Hello server!");
            assert_eq!(std::fs::metadata(&file).unwrap().nlink(), 1);
        }
    }
}
