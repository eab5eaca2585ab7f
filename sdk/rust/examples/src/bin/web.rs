//! A small web service on `wisp::http`: one process per connection.
//!
//! ```text
//! cargo run --release --bin web            # listening on http://127.0.0.1:8080
//! curl localhost:8080/                     # Hello, world!
//! curl -d 'some bytes' localhost:8080/echo # the body back (streamed)
//! curl localhost:8080/16k                  # 16 KiB
//! curl localhost:8080/json                 # {"message":"Hello, world!"}
//! curl -d '{"name":"wisp"}' localhost:8080/json
//! curl localhost:8080/stream?n=3           # three lines, one chunk each
//! ```
//!
//! Options (after the port; `0` picks one): `--max-body BYTES`,
//! `--max-head BYTES`, `--head-timeout-ms MS`, `--idle-timeout-ms MS`,
//! `--tls CERT KEY` (HTTPS; give `wisp run --dir` the files' directory).
use std::io::{self, Read, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wisp::http::{self, Config, Request, Response};
use wisp::net::TcpListener;

/// 16 KiB of text: the benchmark's larger body.
const SIXTEEN_K: [u8; 16384] = {
    let mut b = [0u8; 16384];
    let mut i = 0;
    while i < b.len() {
        b[i] = if i % 64 == 63 { b'\n' } else { b'a' + (i % 26) as u8 };
        i += 1;
    }
    b
};

#[derive(Serialize)]
struct Message<'a> {
    message: &'a str,
}

#[derive(Deserialize)]
struct Greet {
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    greeting: String,
    length: usize,
}

fn handle(req: &mut Request, res: &mut Response) -> io::Result<()> {
    match (req.method(), req.path()) {
        ("GET" | "HEAD", "/") => res.header("Content-Type", "text/plain; charset=utf-8").send(b"Hello, world!\n"),
        ("GET" | "HEAD", "/16k") => res.header("Content-Type", "text/plain; charset=utf-8").send(&SIXTEEN_K),
        ("POST", "/echo") => {
            // Streamed both ways: a body with a length goes back with it,
            // a chunked one goes back chunked.
            if let Some(n) = req.content_length() {
                res.content_length(n);
            }
            res.header("Content-Type", "application/octet-stream");
            io::copy(req, res)?;
            Ok(())
        }
        ("GET", "/json") => json(res, &Message { message: "Hello, world!" }),
        ("POST", "/json") => {
            let mut body = Vec::new();
            req.read_to_end(&mut body)?;
            match serde_json::from_slice::<Greet>(&body) {
                Ok(g) => json(res, &Greeting { greeting: format!("Hello, {}!", g.name), length: body.len() }),
                Err(e) => res.status(400).send(format!("bad JSON: {e}\n").as_bytes()),
            }
        }
        ("GET", "/stream") => {
            let n: u32 = req.query().and_then(|q| q.strip_prefix("n=")).and_then(|n| n.parse().ok()).unwrap_or(3);
            res.header("Content-Type", "text/plain; charset=utf-8");
            for i in 0..n.min(1000) {
                writeln!(res, "line {i}")?;
                res.flush()?; // one chunk per line
            }
            Ok(())
        }
        ("GET", "/panic") => panic!("a handler panics on purpose"),
        (_, "/" | "/16k" | "/echo" | "/json" | "/stream") => res.status(405).send(b"method not allowed\n"),
        _ => res.status(404).send(b"not found\n"),
    }
}

fn json<T: Serialize>(res: &mut Response, value: &T) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    res.header("Content-Type", "application/json").send(&body)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(8080);
    let mut config = Config::new();
    let mut scheme = "http";
    while let Some(opt) = args.next() {
        let mut num = || args.next().and_then(|v| v.parse::<u64>().ok()).expect("a number");
        config = match opt.as_str() {
            "--max-body" => config.max_body(num()),
            "--max-head" => config.max_head(num() as usize),
            "--head-timeout-ms" => config.head_timeout(Duration::from_millis(num())),
            "--idle-timeout-ms" => config.idle_timeout(Duration::from_millis(num())),
            "--tls" => {
                let (cert, key) = (args.next().expect("a certificate"), args.next().expect("a key"));
                scheme = "https";
                config.tls(&cert, &key)
            }
            _ => panic!("unknown option {opt}"),
        };
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("cannot listen");
    println!("listening on {scheme}://{}", listener.local_addr().unwrap());
    if let Err(e) = http::serve(listener, config, handle) {
        eprintln!("web: {e}");
        std::process::exit(1);
    }
}
