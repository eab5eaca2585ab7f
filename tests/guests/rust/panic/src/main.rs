//! panic — a Rust panic aborts the process: with panic=abort (the only
//! strategy on wasm32-wasip1) std prints the message to stderr and then
//! executes `unreachable`, which the host must report as a trap.
fn main() {
    println!("before the panic");
    let v: Vec<u32> = std::env::args().skip(1).map(|a| a.parse().unwrap_or(0)).collect();
    let n = v.first().copied().unwrap_or(42);
    panic!("deliberate panic with {n}");
}
