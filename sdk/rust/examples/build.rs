//! Compiles csrc/parse.c for the wasm32 target with clang and links it
//! into the examples (echo_c calls it). Host builds skip it.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=csrc/parse.c");
    if !env::var("TARGET").unwrap_or_default().starts_with("wasm32") {
        return;
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let obj = out.join("parse.o");
    let lib = out.join("libwispcparse.a");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let ok = Command::new(&clang)
        .args(["--target=wasm32-wasi", "-O2", "-c", "csrc/parse.c", "-o"])
        .arg(&obj)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {clang} (apt-get install clang): {e}"));
    assert!(ok.success(), "clang failed on csrc/parse.c");
    let ar = ["llvm-ar-22", "llvm-ar", "ar"]
        .into_iter()
        .find(|a| Command::new(a).arg("--version").output().is_ok())
        .expect("no archiver (llvm-ar or ar)");
    let _ = std::fs::remove_file(&lib);
    let ok = Command::new(ar).arg("crs").arg(&lib).arg(&obj).status().expect("ar failed to start");
    assert!(ok.success(), "{ar} failed");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=wispcparse");
}
