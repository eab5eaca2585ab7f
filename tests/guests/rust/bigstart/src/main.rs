//! bigstart — a start-up benchmark guest: about 100 KB of ordinary Rust std
//! code (formatting, collections, string processing, sorting, parsing) that
//! does a little real work and prints one line. Times are fixed-point
//! integers: f64 formatting and parsing alone would add some 25 KB of std.
//!
//! It analyses a synthetic web-server log generated from a fixed seed, so the
//! output is deterministic: the same line on every run and every host. The
//! work itself takes well under a millisecond natively; what a benchmark
//! measures with it is loading, compiling (or finding in the cache) and
//! starting a module of realistic size.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::{self, Write as _};
use std::str::FromStr;

const PATHS: &[&str] = &[
    "/", "/index.html", "/api/v1/users", "/api/v1/orders", "/static/app.js",
    "/static/style.css", "/login", "/logout", "/search", "/api/v1/items/42",
];
const AGENTS: &[&str] = &["curl/8.1", "Mozilla/5.0 (X11; Linux)", "Go-http-client/1.1", "python-requests/2.31"];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];

/// A duration in microseconds, shown as milliseconds with three decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Millis(u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// xorshift64*: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
}

#[derive(Debug)]
struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad log line: {}", self.0)
    }
}

impl FromStr for Method {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "GET" => Ok(Method::Get),
            "POST" => Ok(Method::Post),
            "PUT" => Ok(Method::Put),
            "DELETE" => Ok(Method::Delete),
            other => Err(ParseError(format!("method {other:?}"))),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    ip: [u8; 4],
    method: Method,
    path: String,
    status: u16,
    bytes: u64,
    micros: u64,
    agent: String,
}

fn generate(rng: &mut Rng, n: usize) -> String {
    let mut log = String::with_capacity(n * 96);
    for _ in 0..n {
        let ip = [10, rng.below(4) as u8, rng.below(16) as u8, 1 + rng.below(200) as u8];
        let status = match rng.below(20) {
            0 => 500,
            1 | 2 => 404,
            3 => 301,
            _ => 200,
        };
        let _ = writeln!(
            log,
            "{}.{}.{}.{} \"{} {}?q={}\" {} {} {} \"{}\"",
            ip[0], ip[1], ip[2], ip[3],
            rng.pick(METHODS),
            rng.pick(PATHS),
            rng.below(1000),
            status,
            rng.below(50_000),
            Millis(rng.below(250_000) as u64),
            rng.pick(AGENTS),
        );
    }
    log
}

fn parse_line(line: &str) -> Result<Entry, ParseError> {
    let bad = || ParseError(line.chars().take(40).collect());
    let (ip, rest) = line.split_once(' ').ok_or_else(bad)?;
    let mut octets = [0u8; 4];
    for (i, part) in ip.split('.').enumerate() {
        *octets.get_mut(i).ok_or_else(bad)? = part.parse().map_err(|_| bad())?;
    }
    let rest = rest.strip_prefix('"').ok_or_else(bad)?;
    let (request, rest) = rest.split_once('"').ok_or_else(bad)?;
    let (method, target) = request.split_once(' ').ok_or_else(bad)?;
    let path = target.split('?').next().unwrap_or("").to_string();
    let (fields, agent) = rest.trim_start().split_once('"').ok_or_else(bad)?;
    let mut fields = fields.split_whitespace();
    let status = fields.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let bytes = fields.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let millis = fields.next().ok_or_else(bad)?;
    let (whole, frac) = millis.split_once('.').ok_or_else(bad)?;
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = frac.parse().map_err(|_| bad())?;
    if frac >= 1000 {
        return Err(bad());
    }
    Ok(Entry {
        ip: octets,
        method: method.parse()?,
        path,
        status,
        bytes,
        micros: whole * 1000 + frac,
        agent: agent.trim_end_matches('"').to_string(),
    })
}

#[derive(Default)]
struct Stats {
    by_status: BTreeMap<u16, usize>,
    by_method: HashMap<Method, usize>,
    by_path: HashMap<String, (usize, u64)>,
    clients: HashSet<[u8; 4]>,
    agents: BTreeSet<String>,
    total_bytes: u64,
    latencies: Vec<u64>,
    worst_window: u64,
}

impl Stats {
    fn add_all(entries: &[Entry]) -> Stats {
        let mut s = Stats::default();
        let mut window: VecDeque<u64> = VecDeque::with_capacity(16);
        let mut window_sum = 0;
        for e in entries {
            *s.by_status.entry(e.status).or_default() += 1;
            *s.by_method.entry(e.method).or_default() += 1;
            let p = s.by_path.entry(e.path.clone()).or_insert((0, 0));
            p.0 += 1;
            p.1 += e.micros;
            s.clients.insert(e.ip);
            if !s.agents.contains(&e.agent) {
                s.agents.insert(e.agent.clone());
            }
            s.total_bytes += e.bytes;
            s.latencies.push(e.micros);
            window.push_back(e.micros);
            window_sum += e.micros;
            if window.len() > 16 {
                window_sum -= window.pop_front().unwrap_or(0);
            }
            s.worst_window = s.worst_window.max(window_sum / window.len() as u64);
        }
        s.latencies.sort_unstable();
        s
    }

    /// The p-th percentile (p in 0..=100) of the latencies.
    fn percentile(&self, p: usize) -> Millis {
        if self.latencies.is_empty() {
            return Millis(0);
        }
        Millis(self.latencies[(self.latencies.len() - 1) * p / 100])
    }

    fn slowest_path(&self) -> (&str, Millis) {
        let mut paths: Vec<(&String, u64)> =
            self.by_path.iter().map(|(p, (n, t))| (p, t / *n as u64)).collect();
        paths.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        paths.first().map(|(p, m)| (p.as_str(), Millis(*m))).unwrap_or(("-", Millis(0)))
    }
}

/// A word histogram over the user agents and paths: string processing with
/// chars, case mapping and sorting.
fn word_histogram(entries: &[Entry]) -> Vec<(String, usize)> {
    let mut words: HashMap<String, usize> = HashMap::new();
    for e in entries {
        for w in e.agent.split(|c: char| !c.is_alphanumeric()).chain(e.path.split('/')) {
            if w.len() < 2 || w.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            *words.entry(w.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let mut v: Vec<(String, usize)> = words.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(3);
    v
}

fn checksum(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(400);
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let log = generate(&mut rng, n);
    let mut entries = Vec::with_capacity(n);
    let mut errors = 0usize;
    for line in log.lines().chain(std::iter::once("garbage line")) {
        match parse_line(line) {
            Ok(e) => entries.push(e),
            Err(e) => {
                errors += 1;
                if errors > 1 {
                    eprintln!("{e}");
                }
            }
        }
    }
    let stats = Stats::add_all(&entries);
    let (slow, slow_ms) = stats.slowest_path();
    let top: Vec<String> = word_histogram(&entries).iter().map(|(w, c)| format!("{w}:{c}")).collect();
    let statuses: Vec<String> = stats.by_status.iter().map(|(s, c)| format!("{s}={c}")).collect();
    let posts = stats.by_method.get(&Method::Post).copied().unwrap_or(0);
    let line = format!(
        "bigstart: {} requests, {} clients, {} agents, {} KiB, p50 {} ms, p99 {} ms, \
         worst16 {} ms, slowest {} ({} ms), posts {}, [{}], top [{}]",
        entries.len(),
        stats.clients.len(),
        stats.agents.len(),
        stats.total_bytes / 1024,
        stats.percentile(50),
        stats.percentile(99),
        Millis(stats.worst_window),
        slow,
        slow_ms,
        posts,
        statuses.join(" "),
        top.join(" "),
    );
    println!("{line} #{:08x}", checksum(&line));
}
