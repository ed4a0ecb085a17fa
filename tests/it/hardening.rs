//! Nothing a user types aborts, hangs, escapes its output directory or
//! leaves a partial file: the reproducers of issue 12, through the CLI.

use std::path::Path;

use crate::support::{faultline, parts, scenario_text, temp_dir};

/// Writes `text` to `dir/name` and returns the path as a string.
fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.to_string_lossy().into_owned()
}

#[test]
fn a_file_that_is_not_utf8_is_refused_at_the_first_bad_byte() {
    let dir = temp_dir("utf8");
    let mut bytes = scenario_text("orders-log.ron").into_bytes();
    let at = bytes.windows(9).position(|w| w == b"\"invoice\"").expect("invoice") + 3;
    bytes[at] = 0xff;
    let f = write(&dir, "bad.ron", &bytes);
    let (code, _, err) = parts(&faultline(&["check", &f]));
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with(&format!("{f}:27:26: error: not UTF-8 text: byte 0xff")), "{err}");
    assert!(err.contains("= help: save the file as UTF-8"), "{err}");
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let dir = temp_dir("bom");
    let f = write(&dir, "bom.ron", format!("\u{feff}{}", scenario_text("orders-log.ron")));
    let (code, out, err) = parts(&faultline(&["check", &f]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok: scenario `orders-log`"), "{out}");
}

#[test]
fn an_endless_or_huge_file_is_not_read_past_the_input_limit() {
    // /dev/zero never ends; a 5 MB file is larger than any scenario.
    let (code, _, err) = parts(&faultline(&["check", "/dev/zero"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/zero: the file is larger than 4 MB: not a scenario"), "{err}");
    let dir = temp_dir("huge");
    let f = write(&dir, "huge.ron", " ".repeat(5 << 20));
    let (code, _, err) = parts(&faultline(&["check", &f]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("larger than 4 MB"), "{err}");
}
