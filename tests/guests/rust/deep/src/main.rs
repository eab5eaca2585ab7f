//! Recursion N deep with a 512-byte frame in linear memory: about 100 levels
//! fit the 64 KiB shadow stack scripts/cargo-wasm links, 10000 do not.

#[inline(never)]
fn descend(n: u64, parent: &mut [u8; 512]) -> u64 {
    let mut local = [0u8; 512];
    local[(n % 512) as usize] = n as u8;
    parent[0] = local[3];
    if n == 0 {
        return local[0] as u64;
    }
    descend(n - 1, &mut local) + local[(n % 7) as usize] as u64
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let mut top = [0u8; 512];
    println!("{}", descend(n, &mut top));
}
