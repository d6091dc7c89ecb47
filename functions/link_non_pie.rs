//! The build script of every Lambda binary (each function's `Cargo.toml` names it with
//! `build = "../link_non_pie.rs"`; local/hello-world too, so `make coldstart` compares like
//! with like): link the binary as a fixed-address executable (non-PIE) on Linux.
//!
//! Why: a PIE carries one dynamic relocation for every pointer in its read-only data (about
//! 60,000 in epro-api, 24 bytes each in the file), which the loader applies, page by page,
//! at every cold start. Lambda starts the bootstrap fresh in each execution environment, and
//! `make coldstart` measured the difference (README, "Cold start and size"). The code is still
//! compiled position-independent (so crates that also build a shared library, as crc-fast
//! does, still link); only the final link of the binary changes. The cost: the binary's own
//! image is not randomised by ASLR (its heap, stack and shared libraries still are).
//!
//! `make package` checks each bootstrap's ELF type.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    // Nothing else decides the output; cargo reruns the script when the script itself changes.
    println!("cargo:rerun-if-changed=Cargo.toml");
}
