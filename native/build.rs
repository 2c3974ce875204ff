// liblz4 and libzstd are linked from the system (apt: liblz4-dev libzstd-dev) through plain
// extern "C" declarations: the zstd-sys crate would pull in clang/bindgen.
fn main() {
    println!("cargo:rustc-link-lib=dylib=lz4");
    println!("cargo:rustc-link-lib=dylib=zstd");
    println!("cargo:rerun-if-changed=build.rs");
}
