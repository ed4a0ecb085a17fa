//! Schema versions under a rolling deploy: each instance runs code of one
//! version, publishes it and reads up to it; a message above what its
//! instance reads is failed, skipped, parked or misread, and
//! `version-compatible` judges each; a translator keeps old readers whole.

use faultline::sim::run;
use faultline::trace::{Record, RecordKind};

use crate::support::{records, scenario_text, system};

/// The bundled rolling deploy with Billing's `unknown_version` set to
/// `policy` (or removed) and `faults` appended.
fn deploy(policy: Option<&str>, more_faults: &str) -> String {
    let text = scenario_text("schema-rolling-deploy.ron");
    let text = match policy {
        Some(p) => text.replace("unknown_version: Some(Skip)", &format!("unknown_version: Some({p})")),
        None => text.replace("unknown_version: Some(Skip),", ""),
    };
    text.replace(
        r#"every: "1m")]"#,
        &format!(r#"every: "1m"){}]"#, if more_faults.is_empty() { String::new() } else { format!(", {more_faults}") }),
    )
}

fn verdict<'a>(o: &'a faultline::outcome::Outcome, name: &str) -> &'a faultline::check::Verdict {
    o.invariants.iter().find(|v| v.name.starts_with(name)).unwrap()
}

fn unreadable(rs: &[Record]) -> Vec<&Record> {
    rs.iter().filter(|r| r.kind == RecordKind::Unreadable).collect()
}

#[test]
fn each_instance_publishes_the_new_version_only_once_it_is_back_from_its_upgrade() {
    let sys = system(&deploy(Some("Skip"), ""));
    let rs = records(&sys, 3);
    let names = sys.node_names();
    // users-1 is down 5m to 5m05s, users-2 6m to 6m05s, users-3 7m to 7m05s.
    let back = |node: &str| match node {
        "users-1" => 305_000_000_000u64,
        "users-2" => 365_000_000_000,
        _ => 425_000_000_000,
    };
    let published: Vec<&Record> = rs.iter().filter(|r| r.kind == RecordKind::Published).collect();
    let v2: std::collections::BTreeSet<u64> = unreadable(&rs).iter().map(|r| r.msg).collect();
    assert!(!v2.is_empty());
    for p in &published {
        let by = &names[p.node as usize];
        assert_eq!(v2.contains(&p.msg), p.time.0 >= back(by), "{by} at {}: v2 exactly from its upgrade", p.time);
    }
    for u in unreadable(&rs) {
        assert_eq!((u.aux >> 8 & 0xFFFF, u.aux >> 24), (2, 1), "v2 read by code reading up to v1");
    }
}

#[test]
fn a_message_billing_cannot_read_is_skipped_misread_failed_or_parked_as_it_says() {
    let skip = run(&system(&deploy(Some("Skip"), "")), 3).unwrap();
    let v = verdict(&skip, "version-compatible");
    assert!(v.counts["skipped"] > 500, "{v:?}");
    assert_eq!((v.counts["misread"], v.counts["failed"], v.counts["parked_never_read"]), (0, 0, 0));
    assert_eq!(v.violations, v.counts["skipped"]);
    let rows = verdict(&skip, "replica-convergence");
    assert_eq!(rows.counts.get("diverged_same_version"), None, "skipped: late, not misread");

    // No policy: read as v1, the unknown field as 0: the copy holds the
    // newest version with the wrong value.
    let misread = run(&system(&deploy(None, "")), 3).unwrap();
    let v = verdict(&misread, "version-compatible");
    assert_eq!(v.counts["misread"], v.violations);
    assert!(v.violations > 500);
    let rows = verdict(&misread, "replica-convergence");
    assert!(rows.counts["diverged_same_version"] > 100, "{rows:?}");

    // Fail: the log consumer retries the first v2 record in place forever;
    // its partition (and here its only worker) is stuck behind it.
    let fail = run(&system(&deploy(Some("Fail"), "")), 3).unwrap();
    let v = verdict(&fail, "version-compatible");
    assert_eq!((v.violations, v.counts["failed"]), (1, 1), "{v:?}");
    assert!(v.counts["attempts"] > 100_000, "retried: {v:?}");
    assert!(fail.metrics.backlog.values().any(|b| b.max > 500), "the lag grows");

    // Park: set aside, never read by the end.
    let park = run(&system(&deploy(Some("Park"), "")), 3).unwrap();
    let v = verdict(&park, "version-compatible");
    assert_eq!(v.counts["parked_never_read"], v.violations);
    assert_eq!(v.violations, verdict(&skip, "version-compatible").violations);
}

#[test]
fn parked_messages_are_taken_by_an_instance_upgraded_to_read_them() {
    let src = deploy(Some("Park"), r#"RollingDeploy(service: "billing", version: 2, at: "10m", every: "1m")"#);
    let sys = system(&src);
    let rs = records(&sys, 3);
    let parked = unreadable(&rs).len();
    let taken: Vec<&Record> = rs.iter().filter(|r| r.kind == RecordKind::Unparked).collect();
    assert!(parked > 100);
    assert_eq!(taken.len(), parked);
    // Taken when billing-1 is back at 10m05s, by code reading v2.
    assert!(taken.iter().all(|r| r.time.0 == 605_000_000_000 && r.aux == 2));
    let o = run(&sys, 3).unwrap();
    assert!(o.all_hold(), "{:?}", o.invariants);
}

#[test]
fn new_code_reads_old_versions() {
    // Billing upgraded first (consumer first): it reads v1 and v2.
    let src = deploy(Some("Skip"), "").replace(
        r#"faults: [RollingDeploy(service: "users", version: 2, at: "5m", every: "1m")]"#,
        r#"faults: [RollingDeploy(service: "billing", version: 2, at: "2m", every: "1m"), RollingDeploy(service: "users", version: 2, at: "5m", every: "1m")]"#,
    );
    let o = run(&system(&src), 3).unwrap();
    assert!(o.all_hold(), "{:?}", o.invariants);
    assert!(unreadable(&records(&system(&src), 3)).is_empty());
}

#[test]
fn the_translator_pair_differs_only_in_the_translator() {
    let (broken, fixed) =
        (scenario_text("schema-rolling-deploy.ron"), scenario_text("schema-rolling-deploy-translator.ron"));
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("//") && !l.contains("name: \"schema") && !l.contains("question:"))
            .map(|l| l.replace("EmailChangedV1", "EmailChanged"))
            .collect::<Vec<_>>()
    };
    let (a, b) = (strip(&broken), strip(&fixed));
    let extra: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
    assert_eq!(extra.len(), 2, "the translator service and its handler: {extra:?}");
    assert!(extra[0].contains("email-downscaler") && extra[0].contains("reads: Some(2)"), "{extra:?}");
    let o = run(&faultline::scenario::parse("t.ron", &fixed).unwrap().system, 3).unwrap();
    assert!(o.all_hold());
}

#[test]
fn versions_and_deploys_are_checked_with_their_position() {
    let base = scenario_text("schema-rolling-deploy.ron");
    for (from, to, says) in [
        (r#"state: Shared, version: Some(1),"#, "state: Shared,", "`users` is unversioned"),
        (
            r#"RollingDeploy(service: "users", version: 2"#,
            r#"RollingDeploy(service: "users", version: 1"#,
            "already runs version 1",
        ),
        (r#"RollingDeploy(service: "users""#, r#"RollingDeploy(service: "user""#, "no service is called `user`"),
        (r#"every: "1m")"#, r#"every: "1m", down: "0s")"#, "above zero"),
        (
            r#"state: Durable, version: Some(1), unknown_version"#,
            "state: Durable, unknown_version",
            "unversioned service reads every version",
        ),
        (
            r#"state: Durable, version: Some(1),"#,
            "state: Durable, version: Some(2), reads: Some(1),",
            "reads only up to 1",
        ),
    ] {
        assert!(base.contains(from), "{from}");
        let e = faultline::scenario::parse("t.ron", &base.replace(from, to)).expect_err(says);
        let text = e.to_string();
        assert!(text.contains(says), "{says}: {text}");
        assert!(text.contains("t.ron:"), "{text}");
    }
    // The invariant judges a versioned consumer only.
    let unversioned = base.replace("state: Durable, version: Some(1), unknown_version: Some(Skip),", "state: Durable,");
    let e = faultline::scenario::parse("t.ron", &unversioned).expect_err("unversioned");
    assert!(e.to_string().contains("`billing` is unversioned: it reads every version"), "{e}");
}
