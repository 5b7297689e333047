//! Config files are user input: whatever bytes a file holds, loading and analyzing it
//! must end in messages, never a panic. This runs a few thousand seeded mutations of
//! the fixtures through load + analyze (the same path the `load_yaml` fuzz target
//! covers, for machines without cargo-fuzz). Bounded in count and time.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use meshgate::config::load::{load_str, Loaded};
use meshgate::config::validate::analyze;

const INPUTS: usize = 4000;
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// Scalars and tokens that stress the loader and the checks.
const TOKENS: &[&str] = &[
    "-1",
    "0",
    "",
    "*",
    "~",
    "[",
    "]",
    "{",
    "}",
    ":",
    "- ",
    "\"",
    "'",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary",
    "\t",
    "\n",
    "99999999999999999999",
    "-9223372036854775809",
    ".inf",
    ".nan",
    "1e400",
    "0x7fffffff",
    "true",
    "null",
    "(",
    "[a-",
    "\\",
    "ÿ",
    "\u{0}",
    "µs",
    "0.0001ms",
    "*.",
    "a/b/c",
    "mesh",
    "/",
    "?",
    "#",
    "%",
    "---",
    "...",
];

fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut files = Vec::new();
    for dir in ["analyze", "seed"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
            .expect("fixture folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        paths.sort();
        files.extend(
            paths
                .iter()
                .map(|p| std::fs::read_to_string(p).expect("fixture")),
        );
    }
    assert!(files.len() > 10, "fixtures found: {}", files.len());
    files
}

/// One random edit: byte-level, token-level or line-level.
fn mutate(rng: &mut fastrand::Rng, text: &str, corpus: &[String]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let len = bytes.len().max(1);
    match rng.u8(0..8) {
        0 => {
            let i = rng.usize(0..len).min(bytes.len().saturating_sub(1));
            if let Some(b) = bytes.get_mut(i) {
                *b ^= 1 << rng.u8(0..8);
            }
        }
        1 => {
            let i = rng.usize(0..=bytes.len());
            let t = TOKENS[rng.usize(0..TOKENS.len())];
            bytes.splice(i..i, t.bytes());
        }
        2 => {
            let a = rng.usize(0..=bytes.len());
            let b = (a + rng.usize(0..64)).min(bytes.len());
            bytes.drain(a..b);
        }
        3 => {
            let a = rng.usize(0..=bytes.len());
            let b = (a + rng.usize(0..128)).min(bytes.len());
            let piece = bytes[a..b].to_vec();
            let at = rng.usize(0..=bytes.len());
            bytes.splice(at..at, piece);
        }
        _ => {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.is_empty() {
                return TOKENS[rng.usize(0..TOKENS.len())].to_string();
            }
            let i = rng.usize(0..lines.len());
            match rng.u8(0..5) {
                0 => {
                    lines.remove(i);
                }
                1 => {
                    let l = lines[i].clone();
                    lines.insert(rng.usize(0..=lines.len()), l);
                }
                2 => lines[i] = format!("  {}", lines[i]),
                3 => {
                    // Replace the value after a key with a token.
                    if let Some((k, _)) = lines[i].split_once(": ") {
                        lines[i] = format!("{k}: {}", TOKENS[rng.usize(0..TOKENS.len())]);
                    }
                }
                _ => {
                    // Splice in a line from another fixture.
                    let other = &corpus[rng.usize(0..corpus.len())];
                    if let Some(l) = other
                        .lines()
                        .nth(rng.usize(0..other.lines().count().max(1)))
                    {
                        lines.insert(i, l.to_string());
                    }
                }
            }
            return lines.join("\n");
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn mutated_fixtures_load_and_analyze_without_panicking() {
    let corpus = corpus();
    let mut rng = fastrand::Rng::with_seed(0x6d65_7368_6761_7465);
    let started = Instant::now();
    let mut ran = 0;
    let mut with_messages = 0;
    while ran < INPUTS && started.elapsed() < TIME_LIMIT {
        let base = &corpus[rng.usize(0..corpus.len())];
        let mut input = base.clone();
        for _ in 0..rng.usize(1..6) {
            input = mutate(&mut rng, &input, &corpus);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut loaded = Loaded::default();
            load_str(&input, Path::new("mutant.yaml"), &mut loaded);
            let found = analyze(&loaded.config);
            loaded.diagnostics.len() + found.len()
        }));
        match outcome {
            Ok(n) => with_messages += usize::from(n > 0),
            Err(_) => panic!("load + analyze panicked on input {ran}:\n{input}"),
        }
        ran += 1;
    }
    assert!(ran >= 500, "only {ran} inputs ran in {TIME_LIMIT:?}");
    // The mutants are mostly broken: most must have produced a message.
    assert!(
        with_messages > ran / 2,
        "{with_messages} of {ran} had messages"
    );
}
