//! The workspace's `rust-version` tells the truth: it is the newest
//! `rust-version` any locked dependency declares, so a user with an older
//! toolchain is told so by cargo instead of meeting a compile error deep in
//! a dependency. (`make msrv` then builds the tree with exactly that
//! toolchain, which proves it is also enough for the project's own code.)

use std::process::Command;

use crate::util::workspace_root;

fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// The newest `rust-version` among `packages` that are not `own`, with the
/// package that declares it.
fn newest_requirement(metadata: &serde_json::Value) -> Option<(String, String)> {
    let own: Vec<&str> = metadata["workspace_members"]
        .as_array()?
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    metadata["packages"]
        .as_array()?
        .iter()
        .filter(|p| !own.contains(&p["id"].as_str().unwrap_or_default()))
        .filter_map(|p| {
            Some((
                p["rust_version"].as_str()?.to_string(),
                format!("{} {}", p["name"].as_str()?, p["version"].as_str()?),
            ))
        })
        .max_by_key(|(v, _)| version_key(v))
}

#[test]
fn rust_version_is_the_newest_that_a_locked_dependency_needs() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        // Not offline: metadata covers every target's packages, which a
        // build on this one never downloads.
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let declared: Vec<&str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "harness")
        .filter_map(|p| p["rust_version"].as_str())
        .collect();
    let (needed, by) = newest_requirement(&metadata).expect("dependencies declare versions");
    assert_eq!(
        declared.first().map(|v| version_key(v)),
        Some(version_key(&needed)),
        "Cargo.toml says rust-version = {declared:?}, but {by} needs {needed}: set [workspace.package] rust-version = \"{needed}\""
    );
}

/// The negative control: a dependency newer than the rest is the one named.
#[test]
fn the_newest_requirement_is_found_whatever_the_order() {
    let metadata = serde_json::json!({
        "workspace_members": ["me"],
        "packages": [
            {"id": "a", "name": "a", "version": "1.0.0", "rust_version": "1.70"},
            {"id": "b", "name": "b", "version": "2.0.0", "rust_version": "1.88"},
            {"id": "c", "name": "c", "version": "3.0.0", "rust_version": "1.9"},
            {"id": "me", "name": "me", "version": "0.1.0", "rust_version": "1.99"},
        ]
    });
    assert_eq!(
        newest_requirement(&metadata),
        Some(("1.88".to_string(), "b 2.0.0".to_string()))
    );
}
