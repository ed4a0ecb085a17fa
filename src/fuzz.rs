//! A deterministic mutation fuzzer's mutator, for faultline's own tests:
//! the `n`-th mutant of a text is the same on every machine, so any finding
//! is reproduced by its number.
//!
//! Mutants are made from the text's tokens (strings, numbers, identifiers,
//! punctuation): 1 to 3 of deletions, duplications, swaps, truncations,
//! character flips (unicode too), extreme numbers (`0`, `-1`, `1e308`,
//! `2^64`, `NaN`...), extreme strings (empty, very long, huge durations and
//! rates, paths), identifier swaps, deep nesting, splices and repeated
//! lines. `examples/fuzz.rs` runs them through the CLI under time and memory
//! limits; `tests/it/fuzz.rs` runs a slice in-process.

/// A token of RON or JSON text, as a byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Token {
    start: usize,
    end: usize,
    kind: TokenKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenKind {
    Str,
    Num,
    Ident,
    Punct,
}

/// The tokens of `text` (whitespace and comments are skipped).
fn tokens(text: &str) -> Vec<Token> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            TokenKind::Str
        } else if c.is_ascii_digit() || (c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'.' | b'_' | b'+' | b'-')) {
                i += 1;
            }
            TokenKind::Num
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            TokenKind::Ident
        } else {
            // One character (possibly several bytes).
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            TokenKind::Punct
        };
        out.push(Token { start, end: i, kind });
    }
    out
}

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Numbers at the edges of every type a scenario or a tally holds.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "-0",
    "0.5",
    "1e308",
    "-1e308",
    "1e-308",
    "1e309",
    "NaN",
    "inf",
    "-inf",
    "255",
    "256",
    "65536",
    "2147483648",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "1000000000",
    "0x7fffffff",
    "1_000_000",
    "1.",
    ".5",
];

/// Strings at the edges: durations, rates, names, paths, unicode.
const STRINGS: &[&str] = &[
    "",
    " ",
    "0ns",
    "1ns",
    "0s",
    "-1s",
    "1e308s",
    "NaN s",
    "inf",
    "18446744073709551615ns",
    "18446744073709551616ns",
    "99999999999999999999s",
    "1000000000d",
    "365d",
    "10000h",
    "1.5.5s",
    "5 m",
    "0/s",
    "-5/s",
    "1e9/s",
    "1e308/s",
    "1000000/ms",
    "NaN/s",
    "50/0s",
    "..",
    "../../x",
    "/tmp/x",
    "a/b",
    "ü",
    "日本語",
    "\u{1F642}",
    "\u{202e}evil",
    "\\u{0}",
    "\\\"",
    "<script>alert(1)</script>",
    "order-1",
    "x-99999999",
];

/// Identifiers that mean something to RON or to a scenario.
const IDENTS: &[&str] = &[
    "Some",
    "None",
    "true",
    "false",
    "r#x",
    "Scenario",
    "Service",
    "Crash",
    "Log",
    "Queue",
    "Ephemeral",
    "Exp",
    "Const",
    "Uniform",
    "Durable",
    "Volatile",
    "null",
    "NaN",
    "inf",
];

/// Characters a flip writes.
const FLIPS: &[char] = &[
    '(',
    ')',
    '[',
    ']',
    '{',
    '}',
    ',',
    ':',
    '"',
    '\\',
    '/',
    '*',
    '#',
    '0',
    '9',
    '-',
    '.',
    'e',
    '_',
    ' ',
    '\n',
    '\t',
    '\0',
    'ü',
    '\u{feff}',
    '\u{1F642}',
    '\u{fffd}',
];

/// The `index`-th mutant of `text` under `seed`: 1 to 3 mutations.
pub fn mutant(text: &str, seed: u64, index: u64) -> String {
    let mut rng = Rng(seed ^ index.wrapping_mul(0xd6e8_feb8_6659_fd93));
    let mut s = text.to_string();
    // One mutation half the time: more of them mostly break the syntax.
    let n = [1, 1, 1, 1, 1, 2, 2, 2, 3, 3][rng.below(10)];
    for _ in 0..n {
        s = mutate_once(&s, &mut rng);
    }
    s
}

/// Mutants grow (repeated lines, long strings) up to about this size:
/// past the 4 MB input limit, and small enough to keep the fuzzer's own
/// memory low.
const TEXT_MAX: usize = 6 << 20;

fn mutate_once(s: &str, rng: &mut Rng) -> String {
    if s.len() > TEXT_MAX / 4 {
        // Already huge: flip a character or cut it short.
        let at = char_boundary(s, rng.below(s.len()));
        return if rng.below(2) == 0 { s[..at].to_string() } else { format!("{}\0{}", &s[..at], &s[at..]) };
    }
    let toks = tokens(s);
    if toks.is_empty() {
        return format!("{s}{}", rng.pick(FLIPS));
    }
    let t = *rng.pick(&toks);
    let of_kind = |k: TokenKind| toks.iter().filter(move |t| t.kind == k).copied().collect::<Vec<_>>();
    let replace = |t: Token, with: &str| format!("{}{with}{}", &s[..t.start], &s[t.end..]);
    // Half of the mutations change a value and keep the syntax: they reach
    // the checks and the simulation behind the parser.
    const OPS: [u8; 24] = [0, 1, 2, 3, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 8, 9, 10, 11, 11, 12, 12, 12, 12];
    match OPS[rng.below(OPS.len())] {
        // Delete a token.
        0 => replace(t, ""),
        // Duplicate it.
        1 => replace(t, &format!("{0} {0}", &s[t.start..t.end])),
        // Swap two tokens.
        2 => {
            let u = *rng.pick(&toks);
            let (a, b) = if t.start <= u.start { (t, u) } else { (u, t) };
            if a == b {
                return s.to_string();
            }
            format!(
                "{}{}{}{}{}",
                &s[..a.start],
                &s[b.start..b.end],
                &s[a.end..b.start],
                &s[a.start..a.end],
                &s[b.end..]
            )
        }
        // Truncate.
        3 => s[..t.start].to_string(),
        // Flip one character.
        4 => {
            let at = char_boundary(s, rng.below(s.len()));
            let next = s[at..].chars().next().map_or(0, char::len_utf8);
            format!("{}{}{}", &s[..at], rng.pick(FLIPS), &s[at + next..])
        }
        // An extreme number.
        5 => match pick_of(&of_kind(TokenKind::Num), rng) {
            Some(n) => replace(n, rng.pick::<&str>(NUMBERS)),
            None => replace(t, rng.pick::<&str>(NUMBERS)),
        },
        // An extreme string; sometimes a very long one.
        6 => {
            let with = match rng.below(8) {
                0 => format!("\"{}\"", "x".repeat(*rng.pick(&[999, 1000, 1001, 70_000]))),
                1 => format!("\"{}\"", "ü".repeat(600)),
                _ => format!("\"{}\"", rng.pick(STRINGS)),
            };
            match pick_of(&of_kind(TokenKind::Str), rng) {
                Some(x) => replace(x, &with),
                None => replace(t, &with),
            }
        }
        // Another identifier: one of the file's own, or one RON knows.
        7 => {
            let idents = of_kind(TokenKind::Ident);
            let Some(x) = pick_of(&idents, rng) else { return replace(t, rng.pick::<&str>(IDENTS)) };
            let other = if rng.below(2) == 0 {
                rng.pick(IDENTS).to_string()
            } else {
                let y = *rng.pick(&idents);
                s[y.start..y.end].to_string()
            };
            replace(x, &other)
        }
        // Deep nesting.
        8 => {
            let depth = *rng.pick(&[64, 200, 10_000]);
            let (open, close) = *rng.pick(&[("(", ")"), ("[", "]"), ("{", "}"), ("Some(", ")")]);
            let close = if rng.below(2) == 0 { close.repeat(depth) } else { String::new() };
            format!("{}{}{}{close}{}", &s[..t.start], open.repeat(depth), &s[t.start..t.end], &s[t.end..])
        }
        // Splice: a run of tokens copied elsewhere.
        9 => {
            let i = rng.below(toks.len());
            let j = (i + 1 + rng.below(30)).min(toks.len()) - 1;
            let piece = &s[toks[i].start..toks[j].end];
            let at = rng.pick(&toks).start;
            format!("{}{piece} {}", &s[..at], &s[at..])
        }
        // A line repeated: many services, faults or invariants.
        10 => {
            let lines: Vec<&str> = s.lines().collect();
            let i = rng.below(lines.len());
            let times = (*rng.pick(&[2, 50, 1_200, 12_000])).min(TEXT_MAX / (lines[i].len() + 1)).max(2);
            let mut out = String::with_capacity(s.len() + lines[i].len() * times);
            for (k, line) in lines.iter().enumerate() {
                let n = if k == i { times } else { 1 };
                for _ in 0..n {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out
        }
        // Scale a number, or the number of a duration or a rate, keeping
        // its syntax: the valid extremes that reach the simulation.
        12 => {
            let scalable: Vec<Token> = toks
                .iter()
                .filter(|t| match t.kind {
                    TokenKind::Num => true,
                    TokenKind::Str => s.as_bytes().get(t.start + 1).is_some_and(u8::is_ascii_digit),
                    _ => false,
                })
                .copied()
                .collect();
            let Some(x) = pick_of(&scalable, rng) else { return s.to_string() };
            let quoted = s.as_bytes()[x.start] == b'"';
            let inner =
                if quoted { &s[x.start + 1..x.end.saturating_sub(1).max(x.start + 1)] } else { &s[x.start..x.end] };
            let digits = inner.bytes().take_while(|b| b.is_ascii_digit()).count();
            let (number, rest) = inner.split_at(digits);
            let scaled = match rng.below(6) {
                0 => "0".to_string(),
                1 => "1".to_string(),
                2 => format!("{number}0"),
                3 => format!("{number}000"),
                4 => format!("{number}000000"),
                _ => format!("{number}000000000000"),
            };
            let with = if quoted { format!("\"{scaled}{rest}\"") } else { format!("{scaled}{rest}") };
            replace(x, &with)
        }
        // Insert a random extreme value anywhere.
        _ => {
            let with = match rng.below(3) {
                0 => rng.pick(NUMBERS).to_string(),
                1 => format!("\"{}\"", rng.pick(STRINGS)),
                _ => rng.pick(IDENTS).to_string(),
            };
            format!("{}{with}{}", &s[..t.end], &s[t.end..])
        }
    }
}

/// Whether `message` starts with `file:LINE:COLUMN: `: how every refusal
/// of text must begin.
pub fn positioned(message: &str, file: &str) -> bool {
    let Some(rest) = message.strip_prefix(file).and_then(|s| s.strip_prefix(':')) else { return false };
    let mut parts = rest.splitn(3, ':');
    let number = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    number(parts.next()) && number(parts.next()) && parts.next().is_some_and(|r| r.starts_with(' '))
}

fn pick_of(xs: &[Token], rng: &mut Rng) -> Option<Token> {
    (!xs.is_empty()).then(|| *rng.pick(xs))
}

fn char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cover_strings_numbers_identifiers_and_punctuation() {
        let t = tokens("Scenario(name: \"a \\\" b\", rate: -1.5e3, // x\n ok: [1])");
        let kinds: Vec<TokenKind> = t.iter().map(|t| t.kind).collect();
        use TokenKind::*;
        assert_eq!(
            kinds,
            [Ident, Punct, Ident, Punct, Str, Punct, Ident, Punct, Num, Punct, Ident, Punct, Punct, Num, Punct, Punct]
        );
        let s = "Scenario(name: \"a \\\" b\"";
        assert_eq!(&s[t[4].start..t[4].end], "\"a \\\" b\"");
    }

    #[test]
    fn a_mutant_is_the_same_for_the_same_seed_and_index_and_differs_otherwise() {
        let text = "Scenario(name: \"x\", seed: 7, duration: \"20m\", services: [Service(name: \"a\")])";
        assert_eq!(mutant(text, 1, 42), mutant(text, 1, 42));
        let distinct: std::collections::BTreeSet<String> = (0..200).map(|i| mutant(text, 1, i)).collect();
        assert!(distinct.len() > 150, "{}", distinct.len());
        // A mutation may leave the text as it was (two equal tokens swapped): rarely.
        let unchanged = (0..200).filter(|&i| mutant(text, 1, i) == text).count();
        assert!(unchanged < 10, "{unchanged} of 200 mutants are the text itself");
    }

    #[test]
    fn a_position_is_a_file_a_line_and_a_column() {
        assert!(positioned("m.ron:12:3: error: expected comma", "m.ron"));
        assert!(!positioned("m.ron: the file is larger than 4 MB", "m.ron"));
        assert!(!positioned("m.ron:12: error", "m.ron"));
        assert!(!positioned("m.ron:12:x: error", "m.ron"));
        assert!(!positioned("other.ron:1:1: error", "m.ron"));
    }

    #[test]
    fn every_kind_of_mutation_happens() {
        let text = "Scenario(name: \"x\", seed: 7, rate: \"5/s\", list: [A(b: 1.5)])\n";
        let ms: Vec<String> = (0..2000).map(|i| mutant(text, 3, i)).collect();
        assert!(ms.iter().any(|m| m.contains("18446744073709551616") || m.contains("1e308")));
        assert!(ms.iter().any(|m| m.contains(&"x".repeat(1000))));
        assert!(ms.iter().any(|m| m.contains(&"(".repeat(64))));
        assert!(ms.iter().any(|m| m.len() < text.len() / 2), "truncations");
        assert!(ms.iter().any(|m| m.lines().count() >= 50), "repeated lines");
        assert!(ms.iter().any(|m| !m.is_ascii()), "unicode");
    }
}
