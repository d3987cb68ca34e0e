//! Links the optimized server with the functions it runs at start-up and while idle side by side (`link/order.txt`,
//! written by `scripts/link-order.py`): the kernel then keeps about 1 MiB of its code resident instead of some 5 MiB
//! of pages around functions spread over the whole binary. Only where the linker is Rust's own `rust-lld` (the
//! default for x86_64 Linux since Rust 1.90) and no other linker is configured; elsewhere nothing changes. Names the
//! build no longer has are skipped: the list orders code, it never changes what the code does.

fn main() {
    println!("cargo:rerun-if-changed=link/order.txt");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let order = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("link").join("order.txt");
    let other_linker = !var("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_empty()
        || var("CARGO_ENCODED_RUSTFLAGS").contains("linker");
    // Optimized builds only (release and bench; `PROFILE` says `debug` for a bench build).
    let optimized = !matches!(var("OPT_LEVEL").as_str(), "" | "0");
    if var("TARGET") == "x86_64-unknown-linux-gnu" && optimized && order.exists() && !other_linker {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
