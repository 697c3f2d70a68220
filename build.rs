//! Link options for the wasm component.
//!
//! Rust gives a wasm binary a 1 MiB stack at the bottom of its linear memory,
//! so each instance starts with 1.2 MiB. Spin makes an instance per request and,
//! with its pooling allocator, maps and resets all of that memory each time.
//! The handlers need far less stack (the tests pass with 16 KiB and fail with
//! 2 KiB; report data lives on the heap), so 256 KiB keeps a wide margin and
//! takes an instance down to half a MiB, which makes every request cheaper for
//! the runtime (BENCHMARKS.md). A build script rather than `.cargo/config.toml`,
//! so that a RUSTFLAGS from the environment cannot drop it.

const STACK_BYTES: u32 = 256 * 1024;

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size={STACK_BYTES}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
