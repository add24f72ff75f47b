//! `docs/architecture.md` names, for every invariant, the module that keeps it ("Kept by
//! `server::gateway::core::fifo`."). This test fails when an invariant names no keeper, or when a
//! named module or file no longer exists — so the list cannot drift from the code.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The file of a module path such as `server::gateway::core::fifo`, if it exists.
fn module_file(path: &str) -> Option<PathBuf> {
    let mut parts = path.split("::");
    let krate = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    let src = root().join("crates").join(krate).join("src");
    if rest.is_empty() {
        return Some(src.join("lib.rs")).filter(|p| p.exists());
    }
    let joined = rest.join("/");
    [
        src.join(format!("{joined}.rs")),
        src.join(&joined).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

fn keeper_exists(keeper: &str) -> bool {
    if keeper.contains('/') {
        root().join(keeper).exists()
    } else {
        module_file(keeper).is_some()
    }
}

#[test]
fn every_invariant_names_a_keeper_that_exists() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let mut checked = 0;
    for (at, _) in doc.match_indices("**Invariant") {
        // The invariant's paragraph ends at the next blank line or the next invariant.
        let rest = &doc[at + 2..];
        let end = [rest.find("\n\n"), rest.find("**Invariant")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(rest.len());
        let paragraph = &rest[..end];
        let keeper = paragraph
            .split("Kept by `")
            .nth(1)
            .and_then(|k| k.split('`').next())
            .unwrap_or_else(|| panic!("an invariant names no keeper: {paragraph}"));
        assert!(
            keeper_exists(keeper),
            "`{keeper}` does not exist: {paragraph}"
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} invariants found");
}

#[test]
fn a_missing_keeper_is_noticed() {
    assert!(keeper_exists("server::gateway::core::fifo"));
    assert!(!keeper_exists("server::gateway::no_such_module"));
    assert!(!keeper_exists("web/no-such-file.js"));
}
