//! hello-rust — a Rust guest for wisp.
//!
//!   make -C examples         (builds it with scripts/cargo-wasm)
//!   ./wisp run examples/hello-rust.wasm one two
//!
//! Or, inside this directory: ../../scripts/cargo-wasm run -- one two
use std::collections::BTreeMap;

fn main() {
    println!("Hello from Rust on wisp!");
    let args: Vec<String> = std::env::args().skip(1).collect();
    for (i, arg) in args.iter().enumerate() {
        println!("arg {}: {arg}", i + 1);
    }
    let mut letters: BTreeMap<char, usize> = BTreeMap::new();
    for c in args.iter().flat_map(|a| a.chars()).filter(|c| c.is_alphabetic()) {
        *letters.entry(c).or_default() += 1;
    }
    if !letters.is_empty() {
        let counts: Vec<String> = letters.iter().map(|(c, n)| format!("{c}={n}")).collect();
        println!("letters: {}", counts.join(" "));
    }
}
