//! hello — the basic WASI surface through Rust's std.
//!
//! Prints a greeting and its arguments, reads GREETING from the environment,
//! writes and reads back the file named by HELLO_OUT (a path inside a
//! directory the host preopened with --dir), and exits with HELLO_EXIT
//! through std::process::exit. Each step prints one line that tests check.
use std::env;
use std::fs;
use std::io::Write;
use std::process;

fn main() {
    println!("Hello from Rust!");
    for (i, arg) in env::args().enumerate().skip(1) {
        println!("arg {i}: {arg}");
    }
    match env::var("GREETING") {
        Ok(v) => println!("GREETING={v}"),
        Err(_) => println!("GREETING unset"),
    }
    if let Ok(path) = env::var("HELLO_OUT") {
        let text = format!("written by the Rust guest, {} args\n", env::args().count() - 1);
        let mut f = match fs::File::create(&path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("hello: cannot create {path}: {e}");
                process::exit(2);
            }
        };
        f.write_all(text.as_bytes()).expect("write");
        drop(f);
        let back = fs::read_to_string(&path).expect("read back");
        assert_eq!(back, text);
        println!("wrote {} bytes to {path}", back.len());
    }
    eprintln!("hello: stderr works");
    let code = env::var("HELLO_EXIT").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    if code != 0 {
        println!("exiting with {code}");
        process::exit(code);
    }
}
