//! Links the package's binaries, tests and benchmarks with `calloc`, `free` and `realloc` wrapped, so a
//! device's mbedTLS allocations can be counted against its heap budget (`heap_budget`).
//! Anything else that links the library (fuzz targets, other crates) links without them and
//! has no budget, which the library detects at run time.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo::rustc-link-arg=-Wl,--wrap=calloc");
        println!("cargo::rustc-link-arg=-Wl,--wrap=free");
        println!("cargo::rustc-link-arg=-Wl,--wrap=realloc");
    }
}
