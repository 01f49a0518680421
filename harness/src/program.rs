//! Finding a program the way `execvp` does: a name with a slash is a path,
//! any other name is looked up on PATH, and only an executable regular file
//! counts. One lookup for both questions the harness asks: "is this
//! implementation installed?" (before the run, for UNAVAILABLE) and "what
//! do I exec?" (at spawn), so the two can never disagree.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The file `program` names: with a slash, as it is (relative to `cwd`,
/// as the child will see it); otherwise the first executable file of that
/// name on PATH (`/usr/bin:/bin` when PATH is unset, as glibc does).
pub fn find(program: &OsStr, cwd: Option<&Path>) -> Option<PathBuf> {
    let path = Path::new(program);
    if program.as_bytes().contains(&b'/') {
        let path = match cwd {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        };
        return is_executable(&path).then_some(path);
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&search)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where a system tool is (nft, iptables): on PATH, or in /usr/sbin,
/// where Debian puts them and where a user's PATH may not look.
pub fn system_tool(name: &str) -> Option<std::path::PathBuf> {
    find(std::ffi::OsStr::new(name), None).or_else(|| {
        let sbin = std::path::Path::new("/usr/sbin").join(name);
        sbin.is_file().then_some(sbin)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_looked_up_on_path_and_paths_taken_as_they_are() {
        assert!(find(OsStr::new("sh"), None).is_some());
        assert!(find(OsStr::new("/bin/sh"), None).is_some());
        assert_eq!(find(OsStr::new("no-such-program-here"), None), None);
        // A file that exists but is not executable is not a program.
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(find(plain.as_os_str(), None), None);
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find(plain.as_os_str(), None), Some(plain));
        assert_eq!(
            find(OsStr::new("./sh"), Some(Path::new("/bin"))),
            Some(PathBuf::from("/bin/./sh"))
        );
    }
}
