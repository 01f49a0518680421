//! The pipeline's layering, held by a test: each stage of `harness/src`
//! uses only the stages before it, and no two files of a folder use each
//! other in a circle. A change that adds a backward dependency fails here,
//! with the file and the stage it reached for, instead of quietly turning
//! the pipeline into a web.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The stages in order; a stage may use those in earlier rows, never a
/// later one, and never another stage of its own row.
const LAYERS: &[&[&str]] = &[
    &["schema"],
    &["error", "policy", "program", "calls"],
    &["suite"],
    &["exec", "capture"],
    &["verdict"],
    &["matrix", "cmdline"],
    &["run"],
    &["report"],
    &["merge"],
];

fn layer_of(stage: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&stage))
}

/// The module paths a file uses, absolute from the crate root: each
/// `crate::A::B` as `[A, B]`, and each `super::` chain resolved from the
/// file's own module (`verdict/checks.rs` is `verdict::checks`, so its
/// `super::super::report` is `[report]`), so that no spelling of a path
/// gets past the rules. `module` is the file's module path.
fn used_modules(module: &[&str], text: &str) -> Vec<Vec<String>> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    // The identifiers after a `::`-joined prefix: `A::B::c` gives [A, B, c].
    let path_after = |mut rest: &str| -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let name = ident(rest);
            if name.is_empty() {
                break;
            }
            rest = &rest[name.len()..];
            out.push(name);
            match rest.strip_prefix("::") {
                Some(more) => rest = more,
                None => break,
            }
        }
        out
    };
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        // `harness::crate::` never occurs; `$crate::` in a macro does.
        if text[..i].ends_with('$') {
            continue;
        }
        out.push(path_after(&text[i + "crate::".len()..]));
    }
    for (i, _) in text.match_indices("super::") {
        if text[..i].ends_with("super::") {
            continue; // inside a chain already counted from its start
        }
        let mut rest = &text[i..];
        let mut up = 0;
        while let Some(more) = rest.strip_prefix("super::") {
            up += 1;
            rest = more;
        }
        let base = module.len().saturating_sub(up);
        let mut path: Vec<String> = module[..base].iter().map(|m| m.to_string()).collect();
        path.extend(path_after(rest));
        out.push(path);
    }
    out
}

/// Every broken rule in `files` (path relative to `src`, text), one line each.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    // Within each folder: file → the sibling files it uses.
    let mut uses: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (path, text) in files {
        let parts: Vec<&str> = path.trim_end_matches(".rs").split('/').collect();
        let stage = parts[0];
        let file = parts.get(1).copied().unwrap_or("mod");
        // `stage/mod.rs` is the module `stage`.
        let module: Vec<&str> = parts.iter().copied().filter(|p| *p != "mod").collect();
        let Some(own) = layer_of(stage) else {
            problems.push(format!(
                "{path}: stage '{stage}' is not in LAYERS; add it where it belongs"
            ));
            continue;
        };
        for used_path in used_modules(&module, text) {
            let Some(used) = used_path.first().cloned() else {
                continue;
            };
            if used == stage {
                // A sibling file, by its name (`super::*` names nothing).
                if let Some(item) = used_path.get(1).filter(|_| parts.len() > 1) {
                    if *item != file {
                        uses.entry((stage.into(), file.into()))
                            .or_default()
                            .insert(item.clone());
                    }
                }
                continue;
            }
            match layer_of(&used) {
                Some(l) if l < own => {}
                Some(_) => problems.push(format!(
                    "{path}: uses crate::{used}, a stage that comes after (or beside) {stage}"
                )),
                None => problems.push(format!(
                    "{path}: uses crate::{used}, which is not in LAYERS"
                )),
            }
        }
    }
    // A circle among a folder's files: depth-first search from each file.
    let files_of: BTreeSet<(String, String)> = uses.keys().cloned().collect();
    for start in &files_of {
        let mut stack = vec![(start.1.clone(), vec![start.1.clone()])];
        while let Some((at, trail)) = stack.pop() {
            for next in uses
                .get(&(start.0.clone(), at.clone()))
                .into_iter()
                .flatten()
            {
                if *next == start.1 && trail.len() > 1 {
                    problems.push(format!(
                        "{}: the files {} use each other in a circle",
                        start.0,
                        trail.join(" → ")
                    ));
                } else if !trail.contains(next)
                    && files_of.contains(&(start.0.clone(), next.clone()))
                {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// `main.rs`, `lib.rs` and the binary's own modules (each `mod NAME;` in
/// main.rs): the front end, which may use every stage.
fn binary_files() -> Vec<String> {
    let main = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs"))
        .expect("harness/src/main.rs is readable");
    let mut files: Vec<String> = main
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';'))
        .map(|m| format!("{m}.rs"))
        .collect();
    files.extend(["main.rs".to_string(), "lib.rs".to_string()]);
    files
}

fn library_sources(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("harness/src is readable") {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let relative = format!("{prefix}{name}");
        if path.is_dir() {
            library_sources(&path, &format!("{relative}/"), out);
        } else if name.ends_with(".rs") && prefix.is_empty() && binary_files().contains(&name) {
            // The binary and the crate root: they may use every stage.
        } else if name.ends_with(".rs") {
            out.push((relative, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

#[test]
fn every_stage_uses_only_the_stages_before_it() {
    let mut files = Vec::new();
    library_sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "",
        &mut files,
    );
    assert!(files.len() > 20, "read only {} files", files.len());
    let problems = violations(&files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The negative control: a backward use and a circle are both caught.
#[test]
fn a_backward_use_and_a_circle_are_caught() {
    let file = |p: &str, t: &str| (p.to_string(), t.to_string());
    let problems = violations(&[
        file("suite/plan.rs", "use crate::report::terminal::table;"),
        file("verdict/a.rs", "use super::b::X;"),
        file("verdict/b.rs", "use crate::verdict::a::Y;"),
        file("capture/live.rs", "use crate::exec::Cancel;"),
        // The spelling that once got past: a chain of super::.
        file("verdict/grade.rs", "use super::super::report::terminal;"),
    ]);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("verdict/grade.rs: uses crate::report")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("suite/plan.rs: uses crate::report")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("circle")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("capture/live.rs: uses crate::exec")),
        "{problems:?}"
    );
}

/// What only `exec/` may do: start a process (or fork), or signal a
/// process group. Anywhere else it would be a second launcher with its own
/// rules for waiting and killing, as `cmdline/runner.rs` once was (it
/// killed a group after reaping its leader, when the id could be
/// another's).
const LAUNCHING: &[&str] = &[
    "process::Command",
    "Command::new(",
    "pre_exec",
    "killpg",
    "libc::fork",
];

fn launches(files: &[(String, String)]) -> Vec<String> {
    files
        .iter()
        .filter(|(path, _)| !path.starts_with("exec/"))
        .flat_map(|(path, text)| {
            LAUNCHING
                .iter()
                .filter(|word| text.contains(*word))
                .map(move |word| format!("{path}: {word} (start programs through exec::process)"))
        })
        .collect()
}

#[test]
fn only_exec_starts_or_kills_programs() {
    let mut files = Vec::new();
    library_sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "",
        &mut files,
    );
    let problems = launches(&files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Negative control: the runner as it was is caught.
    let old = [(
        "cmdline/runner.rs".to_string(),
        "let mut command = Command::new(first); unsafe { libc::killpg(pid, 9) }".to_string(),
    )];
    assert_eq!(launches(&old).len(), 2, "{:?}", launches(&old));
}
