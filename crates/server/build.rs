//! Rebuild when anything under `web/` changes: it is embedded in the binary (see `src/web.rs`).
fn main() {
    println!("cargo:rerun-if-changed=../../web");
}
