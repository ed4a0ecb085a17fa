//! Source positions for semantic errors in RON scenario files.
//!
//! Deserialization with `ron` tells us *whether* a scenario parses, but once it
//! has, semantic validation (unknown topics, bad durations, ...) only knows a
//! logical path such as `services[2].consume.topics[0]`; `ron` keeps no spans
//! for values. To still point the user at `line:col`, this module re-walks the
//! source text structurally along that path. The walker only has to *skip*
//! values correctly and descend into the ones on the path, so it is lenient:
//! on malformed or truncated input it stops and reports the deepest value it
//! reached instead of failing, and it never panics.

/// Nesting deeper than this is treated as unresolvable, which bounds recursion.
const MAX_DEPTH: usize = 256;

/// One step of a path into a RON document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg<'a> {
    /// The value of a named field of a struct (or of a map entry with this key).
    Field(&'a str),
    /// The n-th (0-based) element of a list or of a tuple-like struct/variant.
    Index(usize),
}

/// A 1-based position in the source, counted like ron counts its error positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in chars (not bytes) since the last `\n`.
    pub col: usize,
}

/// The position of the value at `path` in `src`. The root is the top-level value.
/// When the path cannot be followed to the end (a field absent, an index out of range,
/// a syntax error), returns the position of the deepest value that was reached
/// (the root value's position for an empty/unresolvable path); None only when src has no value at all.
pub fn locate(src: &str, path: &[Seg<'_>]) -> Option<Pos> {
    let mut w = Walker { s: src, b: src.as_bytes(), i: 0 };
    if !w.header() || !w.at_value_start() {
        return None;
    }
    let mut at = w.i;
    for &seg in path {
        w.i = at;
        w.unwrap_some();
        match w.child(seg) {
            Some(next) => at = next,
            None => break,
        }
    }
    Some(pos_of_offset(src, at))
}

/// The position of the byte offset `offset` in `src` (1-based line and column, columns counted like ron counts them).
///
/// ron 0.12.3 (`Position::from_src_end` in `error.rs`) counts the line as one plus
/// the number of `\n` before the offset and the column as one plus the number of
/// *chars* (not bytes) since the last `\n`; a tab or a `\r` is one column like any
/// other char. An offset past the end or inside a char is clamped down first.
pub fn pos_of_offset(src: &str, offset: usize) -> Pos {
    let mut end = offset.min(src.len());
    while !src.is_char_boundary(end) {
        end -= 1;
    }
    let before = src.get(..end).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    Pos {
        line: 1 + before.bytes().filter(|&b| b == b'\n').count(),
        col: 1 + before.get(line_start..).unwrap_or_default().chars().count(),
    }
}

/// The byte offset of a 1-based position (inverse of pos_of_offset; clamps to src.len()).
///
/// A column past the end of its line clamps to that line's `\n`.
pub fn offset_of_pos(src: &str, pos: Pos) -> usize {
    let (mut line, mut col) = (1, 1);
    for (i, c) in src.char_indices() {
        if line > pos.line || (line == pos.line && (col >= pos.col || c == '\n')) {
            return i;
        }
        if c == '\n' {
            (line, col) = (line + 1, 1);
        } else {
            col += 1;
        }
    }
    src.len()
}

/// The closest candidate to `found` by edit distance (Damerau-Levenshtein with
/// adjacent transpositions, compared case-insensitively), if it is close enough to be a
/// plausible misspelling: distance <= max(1, found.chars().count() / 3), and never an exact match
/// of found itself. Ties go to the first candidate in iteration order.
pub fn suggest<'a>(found: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = |s: &str| s.chars().flat_map(char::to_lowercase).collect::<Vec<_>>();
    // Suggestions are for names a person mistyped: short ones. The distance
    // costs the product of the lengths, so long strings get none.
    const SUGGEST_MAX_CHARS: usize = 64;
    let n = found.chars().count();
    if n > SUGGEST_MAX_CHARS {
        return None;
    }
    let want = lower(found);
    let max = (n / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for cand in candidates {
        let m = cand.chars().count();
        if cand == found || m > SUGGEST_MAX_CHARS || m.abs_diff(n) > max {
            continue;
        }
        let d = edit_distance(&want, &lower(cand));
        // Strictly smaller, so the first of equally close candidates wins.
        if d <= max && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, cand));
        }
    }
    best.map(|(_, cand)| cand)
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            if i == 0 || j == 0 {
                d[i][j] = i + j; // distance to or from the empty string
                continue;
            }
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// ron's whitespace set (`is_whitespace_char` in ron's `parse.rs`).
fn is_ws(c: char) -> bool {
    c.is_ascii_whitespace() // space, \t, \n, \x0C, \r
        || matches!(c, '\x0B' | '\u{85}' | '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}')
}

/// A cursor over the source. Reads go through `get`, so a cursor that runs past
/// the end (or into the middle of a char) just reads as end of input.
struct Walker<'s> {
    s: &'s str,
    b: &'s [u8],
    i: usize,
}

impl Walker<'_> {
    fn at(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.i + ahead).copied()
    }

    fn ch(&self) -> Option<char> {
        self.s.get(self.i..)?.chars().next()
    }

    fn starts_with(&self, pat: &[u8]) -> bool {
        self.b.get(self.i..).is_some_and(|rest| rest.starts_with(pat))
    }

    /// Skips whitespace and comments (block comments nest, as in RON).
    fn trivia(&mut self) {
        loop {
            if let Some(c) = self.ch().filter(|&c| is_ws(c)) {
                self.i += c.len_utf8();
            } else if self.starts_with(b"//") {
                let rest = self.b.get(self.i..).unwrap_or_default();
                self.i += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            } else if self.starts_with(b"/*") {
                self.i += 2;
                let mut depth = 1;
                while depth > 0 && self.i < self.b.len() {
                    if self.starts_with(b"/*") {
                        (depth, self.i) = (depth + 1, self.i + 2);
                    } else if self.starts_with(b"*/") {
                        (depth, self.i) = (depth - 1, self.i + 2);
                    } else {
                        self.i += 1;
                    }
                }
            } else {
                return;
            }
        }
    }

    /// Skips leading trivia and `#![...]` attributes; false if one is malformed.
    fn header(&mut self) -> bool {
        loop {
            self.trivia();
            if !self.starts_with(b"#!") {
                return true;
            }
            self.i += 2;
            self.trivia();
            if self.at(0) != Some(b'[') || !self.value(0) {
                return false;
            }
        }
    }

    fn at_value_start(&self) -> bool {
        self.ch().is_some_and(|c| {
            matches!(c, '"' | '\'' | '[' | '(' | '{' | '+' | '-' | '.' | '_') || c.is_ascii_digit() || c.is_alphabetic()
        })
    }

    /// Moves from `Some(x)` (possibly nested) to `x`, so paths need not mention Some.
    fn unwrap_some(&mut self) {
        for _ in 0..MAX_DEPTH {
            let start = self.i;
            if self.ident() && self.s.get(start..self.i) == Some("Some") {
                self.trivia();
                if self.at(0) == Some(b'(') {
                    self.i += 1;
                    self.trivia();
                    if self.at_value_start() {
                        continue;
                    }
                }
            }
            self.i = start;
            return;
        }
    }

    /// From the start of a value, the start of the child value selected by `seg`.
    fn child(&mut self, seg: Seg<'_>) -> Option<usize> {
        let close = match self.at(0)? {
            b'[' => b']',
            b'{' => b'}',
            b'(' => b')',
            _ => {
                // `Name(...)`: a named struct, tuple struct or enum variant.
                if !self.ident() {
                    return None;
                }
                self.trivia();
                (self.at(0) == Some(b'(')).then_some(b')')?
            }
        };
        self.i += 1;
        for n in 0.. {
            self.trivia();
            if !self.at_value_start() {
                return None; // the closing bracket, or garbage
            }
            let key = self.i;
            let skipped = self.value(0);
            let key_text = self.s.get(key..self.i).unwrap_or_default();
            self.trivia();
            if skipped && self.at(0) == Some(b':') {
                self.i += 1;
                self.trivia();
                if let Seg::Field(name) = seg
                    && close != b']'
                    && key_is(key_text, name)
                {
                    return self.at_value_start().then_some(self.i);
                }
                if !self.value(0) {
                    return None;
                }
                self.trivia();
            } else if seg == Seg::Index(n) && close != b'}' {
                return Some(key);
            } else if !skipped {
                return None;
            }
            if self.at(0)? != b',' {
                return None;
            }
            self.i += 1;
        }
        None
    }

    /// Skips one complete value; false (cursor anywhere) if it is malformed.
    fn value(&mut self, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match self.at(0) {
            None => false,
            Some(b'"' | b'\'') => self.quoted(),
            Some(b'[' | b'(' | b'{') => self.body(depth),
            Some(b'b') if matches!(self.at(1), Some(b'"' | b'\'')) => {
                self.i += 1;
                self.quoted()
            }
            Some(b'b' | b'r') if self.raw_string() => true,
            Some(b'0'..=b'9' | b'+' | b'-' | b'.') => self.number(),
            Some(_) => {
                if !self.ident() {
                    return false;
                }
                let end = self.i;
                self.trivia();
                if self.at(0) == Some(b'(') {
                    return self.body(depth);
                }
                self.i = end;
                true
            }
        }
    }

    /// Skips a bracketed body, accepting any values, commas and colons inside:
    /// the walker needs to find the matching bracket, not to validate.
    fn body(&mut self, depth: usize) -> bool {
        let close = match self.at(0) {
            Some(b'[') => b']',
            Some(b'{') => b'}',
            _ => b')',
        };
        self.i += 1;
        loop {
            self.trivia();
            match self.at(0) {
                None => return false,
                Some(c) if c == close => {
                    self.i += 1;
                    return true;
                }
                Some(b',' | b':') => self.i += 1,
                Some(_) if !self.value(depth + 1) => return false,
                Some(_) => {}
            }
        }
    }

    /// Skips a `"string"` or `'c'har` with backslash escapes.
    fn quoted(&mut self) -> bool {
        let Some(q) = self.at(0) else { return false };
        self.i += 1;
        loop {
            match self.at(0) {
                None => return false,
                Some(b'\\') => self.i += 2,
                Some(c) => {
                    self.i += 1;
                    if c == q {
                        return true;
                    }
                }
            }
        }
    }

    /// Skips `r"..."`, `r#"..."#`, `br"..."` etc.; leaves the cursor alone if this
    /// is not a raw string (e.g. an identifier starting with r or b, or `r#ident`).
    fn raw_string(&mut self) -> bool {
        let rest = self.s.get(self.i..).unwrap_or_default();
        let Some(after_r) = rest.strip_prefix("br").or_else(|| rest.strip_prefix('r')) else {
            return false;
        };
        // The slices below are safe: every bound sits next to an ASCII `#` or `"`.
        let hashes = &after_r[..after_r.len() - after_r.trim_start_matches('#').len()];
        if !after_r[hashes.len()..].starts_with('"') {
            return false;
        }
        let open = rest.len() - after_r.len() + hashes.len() + 1;
        let close = format!("\"{hashes}");
        let Some(k) = rest[open..].find(&close) else {
            self.i = self.b.len(); // unterminated: it swallows the rest
            return false;
        };
        self.i += open + k + close.len();
        true
    }

    /// Skips a number: sign, digits, `_`, `.`, hex/binary/octal prefixes and
    /// suffixes, exponent signs; also `-inf` and the like.
    fn number(&mut self) -> bool {
        if matches!(self.at(0), Some(b'+' | b'-')) {
            self.i += 1;
        }
        let body = self.i;
        // In hex, `e` is a digit, so a following sign is not an exponent sign.
        let hex = self.starts_with(b"0x") || self.starts_with(b"0X");
        let mut prev = 0;
        while let Some(c) = self.at(0) {
            let exp_sign = matches!(c, b'+' | b'-') && matches!(prev, b'e' | b'E') && !hex;
            if !(c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || exp_sign) {
                break;
            }
            (prev, self.i) = (c, self.i + 1);
        }
        self.i > body
    }

    /// Skips an identifier, including raw ones like `r#type` or `r#a.b-c`.
    fn ident(&mut self) -> bool {
        let raw = self.starts_with(b"r#");
        if raw {
            self.i += 2;
        }
        let start = self.i;
        while let Some(c) = self.ch() {
            let ok = c == '_'
                || (self.i == start && c.is_alphabetic())
                || (self.i > start && c.is_alphanumeric())
                || (raw && (c.is_alphanumeric() || matches!(c, '.' | '+' | '-')));
            if !ok {
                break;
            }
            self.i += c.len_utf8();
        }
        self.i > start
    }
}

/// Whether a struct field name or map key (ident, raw ident or string) is `name`.
fn key_is(key: &str, name: &str) -> bool {
    key == name
        || key.strip_prefix("r#") == Some(name)
        || key.strip_prefix('"').and_then(|k| k.strip_suffix('"')) == Some(name)
}

#[cfg(test)]
mod tests {
    use super::Seg::{Field as F, Index as I};
    use super::*;

    const SCENARIO: &str = r#"// header comment
Scenario(
    name: "orders-log",
    seed: 7,
    bus: Log(partitions: 4, latency: Exp(mean: "2ms")),
    services: [
        Service(name: "order", workers: 8,
            on: [Accept(entity: "order", emit: "OrderCreated", work: Exp(mean: "1ms"))]),
        Service(name: "inventory", workers: 4, state: Durable,
            consume: (topics: ["OrderCreated"], group: "inventory"),
            on: [Handle(event: "OrderCreated", work: Exp(mean: "3ms"), emit: ["InventoryReserved"])]),
    ],
    workload: Poisson(rate: "50/s", entity: "order", keys: Uniform(1000)),
    faults: [Crash(node: "inventory-1", at: "2m", down_for: "5m")],
)
"#;

    const TOPIC: [Seg<'static>; 5] = [F("services"), I(1), F("consume"), F("topics"), I(0)];

    fn at(src: &str, path: &[Seg<'_>]) -> Option<(usize, usize)> {
        locate(src, path).map(|p| (p.line, p.col))
    }

    #[test]
    fn scenario_paths() {
        let s = SCENARIO;
        assert_eq!(at(s, &[]), Some((2, 1)));
        assert_eq!(at(s, &TOPIC), Some((10, 32)));
        assert_eq!(at(s, &[F("workload"), F("keys"), I(0)]), Some((13, 68)));
        assert_eq!(at(s, &[F("bus"), F("latency")]), Some((5, 38)));
        assert_eq!(at(s, &[F("bus"), F("latency"), F("mean")]), Some((5, 48)));
        assert_eq!(at(s, &[F("bus"), F("partitions")]), Some((5, 26)));
        assert_eq!(at(s, &[F("services"), I(0), F("workers")]), Some((7, 41)));
        assert_eq!(at(s, &[F("services"), I(1), F("state")]), Some((9, 55)));
        let work = [F("services"), I(0), F("on"), I(0), F("work"), F("mean")];
        assert_eq!(at(s, &work), Some((8, 80)));
        let emit = [F("services"), I(1), F("on"), I(0), F("emit"), I(0)];
        assert_eq!(at(s, &emit), Some((11, 79)));
        assert_eq!(at(s, &[F("faults"), I(0), F("down_for")]), Some((14, 61)));
    }

    #[test]
    fn unresolvable_paths_fall_back_to_deepest_value() {
        let s = SCENARIO;
        assert_eq!(at(s, &[F("services"), I(1), F("nope")]), Some((9, 9)));
        assert_eq!(at(s, &[F("services"), I(5), F("name")]), Some((6, 15)));
        assert_eq!(at(s, &[F("nope"), F("deeper")]), Some((2, 1)));
        // A field step into a list, an index into a unit/string value.
        assert_eq!(at(s, &[F("services"), F("name")]), Some((6, 15)));
        assert_eq!(at(s, &[F("services"), I(1), F("state"), I(0)]), Some((9, 55)));
        assert_eq!(at(s, &[F("name"), I(0)]), Some((3, 11)));
        // Truncated input: the path stops at the last value whose start was seen.
        let cut = &s[..s.find("group").unwrap_or(0)];
        assert_eq!(at(cut, &TOPIC), Some((10, 32)));
        assert_eq!(at(cut, &[F("workload")]), Some((2, 1)));
        assert_eq!(at("", &[]), None);
        assert_eq!(at("  // only a comment\n /* and */ ", &[F("x")]), None);
        assert_eq!(at("#![enable(implicit_some", &[]), None);
    }

    #[test]
    fn tricky_tokens_and_comments() {
        let s = r##"#![enable(implicit_some)]
#![enable(unwrap_newtypes)] /* block /* nested */ still comment */
(
    a: "x), // \" y", // trailing ( [ comment
    b: r#"raw ") "#, c: 'x', d: '\'', e: b"by)", f: br#")"#, g: r#type,
    /* between */ target /* c */ : /* d */ Some([1, -2.5e-3, 0xFF, 1_000, ]),
    map: { "k1": 1, key2: (x: 2, ), },
    ü: "é", tail: (1, (2, 3),),
)"##;
        assert_eq!(at(s, &[]), Some((3, 1)));
        assert_eq!(at(s, &[F("b")]), Some((5, 8)));
        assert_eq!(at(s, &[F("d")]), Some((5, 33)));
        assert_eq!(at(s, &[F("g")]), Some((5, 65)));
        assert_eq!(at(s, &[F("target")]), Some((6, 44)));
        assert_eq!(at(s, &[F("target"), I(2)]), Some((6, 62)));
        assert_eq!(at(s, &[F("target"), I(3)]), Some((6, 68)));
        assert_eq!(at(s, &[F("map"), F("k1")]), Some((7, 18)));
        assert_eq!(at(s, &[F("map"), F("key2"), F("x")]), Some((7, 31)));
        // Columns count chars: `ü` and `é` are two bytes each but one column.
        assert_eq!(at(s, &[F("tail"), I(1), I(1)]), Some((8, 27)));
    }

    #[test]
    fn offsets_round_trip() {
        for (off, _) in SCENARIO.char_indices() {
            assert_eq!(offset_of_pos(SCENARIO, pos_of_offset(SCENARIO, off)), off);
        }
        let s = "aé\tb\nxy";
        assert_eq!(pos_of_offset(s, 4), Pos { line: 1, col: 4 });
        assert_eq!(pos_of_offset(s, 2), Pos { line: 1, col: 2 }); // inside é
        assert_eq!(pos_of_offset(s, 99), Pos { line: 2, col: 3 });
        assert_eq!(offset_of_pos(s, Pos { line: 1, col: 40 }), 5);
        assert_eq!(offset_of_pos(s, Pos { line: 9, col: 1 }), s.len());
    }

    #[test]
    fn columns_match_ron() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            name: String,
            seed: u32,
        }
        // ron spans an unknown field name exactly; `é` and `ö` are 2 bytes each,
        // and the tab is one column.
        let src = "(\n\t name: \"héllo wörld\", sed: 1,\n)";
        let err = ron::from_str::<S>(src).expect_err("unknown field on purpose");
        let start = src.find("sed:").unwrap_or(0);
        let (ours, end) = (pos_of_offset(src, start), pos_of_offset(src, start + 3));
        assert_eq!(ours, Pos { line: 2, col: 24 }); // 26 if bytes were counted
        let pos = |p: ron::error::Position| Pos { line: p.line, col: p.col };
        assert_eq!((ours, end), (pos(err.span.start), pos(err.span.end)));
    }

    #[test]
    fn never_panics_on_prefixes_or_mutations() {
        let paths: [&[Seg<'_>]; 4] = [
            &TOPIC,
            &[F("workload"), F("keys"), I(0)],
            &[F("services"), I(0), F("on"), I(0), F("work"), F("mean")],
            &[F("faults"), I(0), F("down_for")],
        ];
        let check = |src: &str| {
            for path in paths {
                let _ = locate(src, path);
            }
        };
        for end in (0..=SCENARIO.len()).filter(|&e| SCENARIO.is_char_boundary(e)) {
            check(&SCENARIO[..end]);
        }
        let noise = b"()[]{}\",:'#!/*\\rb0-e_\n\xc3";
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            usize::try_from(state >> 33).unwrap_or(0)
        };
        for _ in 0..400 {
            let mut bytes = SCENARIO.as_bytes().to_vec();
            for _ in 0..1 + next() % 4 {
                let i = next() % bytes.len();
                bytes[i] = noise[next() % noise.len()];
            }
            check(&String::from_utf8_lossy(&bytes));
        }
        // Pathological nesting stops at the depth limit instead of overflowing.
        let deep = format!("({}1{})", "[".repeat(100_000), "]".repeat(100_000));
        check(&deep);
        assert_eq!(at(&deep, &[I(0), I(0), I(0)]), Some((1, 4)));
    }

    #[test]
    fn suggestions() {
        let fields = ["workers", "instances"];
        assert_eq!(suggest("workrs", fields), Some("workers"));
        assert_eq!(suggest("wokrers", fields), Some("workers"));
        assert_eq!(suggest("WORKERS", fields), Some("workers"));
        assert_eq!(suggest("workers", fields), None);
        assert_eq!(suggest("xyz", ["workers"]), None);
        let events = ["OrderPlaced", "OrderCreated", "InventoryReserved"];
        assert_eq!(suggest("OrderCreatd", events), Some("OrderCreated"));
        assert_eq!(suggest("ab", ["ac", "ad"]), Some("ac"));
    }
}
