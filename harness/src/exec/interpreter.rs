//! Python behind a version manager's shim, run directly.
//!
//! pyenv and asdf put a `shims` directory first on PATH: `python3` there is
//! a shell script that works out which interpreter to run and then execs
//! it, starting a shell and several helper processes each time. Measured
//! on this project's machine (pyenv, 2 cores): `harness run` on the
//! default suite took 8.9 s with the shim first on PATH and 5.2 s with the
//! interpreter's own directory first, the same cells and verdicts: the
//! shim was a third of `make run`.
//!
//! So a manifest command whose program is a Python shim runs the
//! interpreter that shim runs, asked once per run of the shim itself
//! (`sys.executable`), from the harness's directory and with its
//! environment, so the shim decides as it would for the programs
//! (`PYENV_VERSION`, `.python-version`). Nothing else changes: the same
//! interpreter runs the same script with the same arguments. A shim that
//! does not answer within a few seconds, or answers something that is not
//! a program, is kept as it is.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exec::process::Child;
use crate::suite::manifest::Manifest;

/// How long the shim may take to say which interpreter it runs.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `found` (a program found on PATH) is a version manager's shim:
/// a file in a directory called `shims`.
fn is_shim(found: &Path) -> bool {
    found
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|dir| dir == "shims")
}

/// The interpreter behind the Python shim `shim`, if it says.
fn ask(shim: &Path) -> Option<PathBuf> {
    let argv = [
        shim.display().to_string(),
        "-c".into(),
        "import sys; print(sys.executable)".into(),
    ];
    let mut child = Child::spawn("python shim", &argv, None, None).ok()?;
    let out = child.wait(ASK_TIMEOUT, &|| false).ok()?;
    if out.exit_code != Some(0) {
        return None;
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (path.is_absolute() && crate::program::is_executable(&path) && !is_shim(&path)).then_some(path)
}

/// Rewrites every command of `manifest` whose program is a Python shim on
/// PATH to run the interpreter behind it; returns each program so
/// resolved, with the interpreter it now names.
pub fn unshim(manifest: &mut Manifest) -> BTreeMap<String, PathBuf> {
    let mut resolved: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
    let mut resolve = |program: &str| -> Option<PathBuf> {
        if !program.starts_with("python") || program.contains('/') {
            return None;
        }
        resolved
            .entry(program.to_string())
            .or_insert_with(|| {
                let found = crate::program::find(OsStr::new(program), None)?;
                is_shim(&found).then(|| ask(&found)).flatten()
            })
            .clone()
    };
    for implementation in &mut manifest.implementations {
        let commands = [
            &mut implementation.server,
            &mut implementation.client,
            &mut implementation.command_line.server,
            &mut implementation.command_line.client,
        ];
        for command in commands.into_iter().flatten() {
            if let Some(path) = command.first().and_then(|p| resolve(p)) {
                command[0] = path.display().to_string();
            }
        }
    }
    resolved
        .into_iter()
        .filter_map(|(name, path)| Some((name, path?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fake shim (a script in a `shims` directory that execs the real
    /// interpreter, as pyenv's does) is replaced by what it runs; the same
    /// name outside a `shims` directory, and programs that are not Python,
    /// are left alone.
    #[test]
    fn a_python_shim_is_replaced_by_the_interpreter_it_runs() {
        let Some(real) = crate::program::find(OsStr::new("python3"), None) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let shims = dir.path().join("shims");
        std::fs::create_dir(&shims).unwrap();
        let shim = shims.join("python3");
        // The interpreter's own path, whatever PATH held before.
        let target = String::from_utf8(
            std::process::Command::new(&real)
                .args(["-c", "import sys; print(sys.executable)"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let target = target.trim();
        std::fs::write(&shim, format!("#!/bin/sh\nexec {target} \"$@\"\n")).unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(is_shim(&shim));
        assert_eq!(ask(&shim).as_deref(), Some(Path::new(target)));
        assert!(!is_shim(Path::new(target)));
        // Not a Python program: never asked.
        assert!(!is_shim(Path::new("/usr/bin/nc")));
    }
}
