//! Messages with payloads: a schema version and named integer fields that
//! requests get from their workload, handlers copy, set and write into
//! table rows, and replica-convergence compares (value and version, not
//! only the version).

use std::sync::{Arc, Mutex};

use faultline::service::{Context, Message, Out, Service};
use faultline::sim::{Dist, SimDuration};
use faultline::trace::RecordKind;

use crate::support::{records, system};

/// Users take email changes (each a new address: its number) and publish
/// them through `relay` to billing, which keeps a copy of the table.
fn emails(relay_set: &str) -> String {
    format!(
        r#"Scenario(
    name: "payload-test",
    duration: "2m",
    bus: Log(partitions: 4, latency: Exp(mean: "2ms")),
    services: [
        Service(name: "users", workers: 4, state: Durable,
            on: [Accept(entity: "change", work: Const("1ms"), write: "email", write_value: "email",
                        emit: ["EmailChanged"])]),
        Service(name: "relay", workers: 4, version: 2, consume: (topics: ["EmailChanged"]),
            on: [Handle(event: "EmailChanged", work: Const("1ms"), emit: ["EmailCopied"], set: [{relay_set}])]),
        Service(name: "billing", workers: 4, state: Durable, consume: (topics: ["EmailCopied"]),
            on: [Handle(event: "EmailCopied", work: Const("1ms"), write: "email", write_value: "email",
                        terminal: true)]),
    ],
    workload: Poisson(rate: "50/s", entity: "change", keys: Uniform(100), stop: "90s",
        fields: [Field(name: "email", value: Sequential), Field(name: "plan", value: Uniform(1, 3))],
        version: 1),
    invariants: [
        NoLostEntities(entity: "change", deadline_after_heal: "10s"),
        ReplicaConvergence(source: "users", replica: "billing", table: "email"),
    ],
)"#
    )
}

#[test]
fn a_copied_value_converges_and_a_changed_one_is_caught_at_the_same_version() {
    for seed in 0..5 {
        let o = faultline::sim::run(&system(&emails("")), seed).unwrap();
        assert!(o.all_hold(), "seed {seed}: {:?}", o.invariants);
        let rows = o.invariants[1].counts["rows"];
        assert!(rows > 90, "seed {seed}: {rows} rows");
        // The relay changes the address on the way: every row has the
        // newest version, with another value.
        let o = faultline::sim::run(&system(&emails(r#"Set(field: "email", to: Add(1000))"#)), seed).unwrap();
        let c = &o.invariants[1].counts;
        assert!(o.invariants[1].violated(), "seed {seed}: {c:?}");
        assert_eq!(c["diverged"], rows, "seed {seed}");
        assert_eq!(c["diverged_same_version"], rows, "seed {seed}: misread, not late");
        assert!(o.invariants[0].holds(), "seed {seed}: nothing was lost");
    }
}

#[test]
fn a_misread_copy_is_told_as_a_misread() {
    let sys = system(&emails(r#"Set(field: "email", to: Const(0))"#));
    let o = faultline::sim::run(&sys, 1).unwrap();
    let story = o.invariants[1].example.as_ref().expect("a story");
    let last = story.lines.last().expect("a conclusion");
    assert!(last.contains("holds that version with another value"), "{last}");
}

/// (entity, key, schema version, fields) of a message handled.
type Handled = (u64, u64, u16, [i64; 2]);

/// Records the payload of every message a service handles.
#[derive(Debug)]
struct Seen {
    work: Dist,
    seen: Arc<Mutex<Vec<Handled>>>,
}

impl Service for Seen {
    fn work(&self, _msg: &Message) -> &Dist {
        &self.work
    }
    fn handle(&self, _ctx: &Context<'_>, msg: &Message, out: &mut Out) {
        self.seen.lock().unwrap().push((msg.entity.0, msg.key, msg.version, msg.fields));
        out.terminal();
    }
}

/// What billing (replaced by a recorder) receives under `seed`, and the
/// field slots of `email` and `plan`.
fn received(relay_set: &str, seed: u64) -> (Vec<Handled>, usize, usize) {
    let mut sys = system(&emails(relay_set));
    let seen = Arc::new(Mutex::new(Vec::new()));
    sys.services[2].behaviour = Arc::new(Seen { work: Dist::Const(SimDuration::MILLISECOND), seen: seen.clone() });
    faultline::sim::run(&sys, seed).unwrap();
    let slot = |name: &str| (0..2u8).find(|&s| sys.names.field_name(s) == name).expect("a field") as usize;
    let (email, plan) = (slot("email"), slot("plan"));
    let mut v = seen.lock().unwrap().clone();
    v.sort();
    (v, email, plan)
}

#[test]
fn fields_come_from_the_workload_and_are_copied_set_and_stamped_on_the_way() {
    let (got, email, plan) = received("", 3);
    assert!(got.len() > 4000);
    for &(entity, _, version, fields) in &got {
        // One workload: an entity's number among its arrivals is its id.
        assert_eq!(fields[email], entity as i64, "Sequential");
        assert!((1..=3).contains(&fields[plan]), "Uniform(1, 3): {}", fields[plan]);
        assert_eq!(version, 2, "the relay stamps its version on what it publishes");
    }
    for p in 1..=3 {
        let n = got.iter().filter(|r| r.3[plan] == p).count();
        assert!(n > got.len() / 4, "plan {p} drawn {n} times of {}", got.len());
    }
    // The same plan per entity under the same seed, another under another seed.
    assert_eq!(received("", 3).0, got);
    let other: Vec<i64> = received("", 4).0.iter().take(200).map(|r| r.3[plan]).collect();
    assert_ne!(other, got.iter().take(200).map(|r| r.3[plan]).collect::<Vec<_>>());
    // Set: a constant, a copy of another field, an increment; the rest copied.
    let (set, email, plan) = received(r#"Set(field: "plan", to: Copy("email")), Set(field: "email", to: Add(5))"#, 3);
    for (&(entity, _, _, f), &(_, _, _, before)) in set.iter().zip(&got) {
        assert_eq!(f[plan], entity as i64, "plan copied from email");
        assert_eq!(f[email], before[email] + 5);
    }
    let (set, _, plan) = received(r#"Set(field: "plan", to: Const(-7))"#, 3);
    assert!(set.iter().all(|r| r.3[plan] == -7));
}

#[test]
fn fields_draw_nothing_so_the_arrivals_stay_the_same() {
    let with = emails("");
    let without = with.replace(
        r#"fields: [Field(name: "email", value: Sequential), Field(name: "plan", value: Uniform(1, 3))],"#,
        "",
    );
    assert_ne!(with, without);
    let without = without.replace(r#"write_value: "email","#, "");
    let requests = |src: &str| -> Vec<(u64, u64)> {
        records(&system(src), 9).iter().filter(|r| r.kind == RecordKind::Request).map(|r| (r.time.0, r.aux)).collect()
    };
    assert_eq!(requests(&with), requests(&without));
}

#[test]
fn payload_mistakes_are_refused_where_they_are_written() {
    let refused = |src: &str, needle: &str| {
        let e = faultline::scenario::parse("p.ron", src).expect_err("refused").to_string();
        assert!(e.contains(needle), "expected {needle:?} in:\n{e}");
    };
    let base = emails("");
    refused(
        &emails(r#"Set(field: "coupon", to: Const(1))"#),
        "messages carry at most 2 fields; this scenario names `email`, `coupon` first",
    );
    refused(&base.replace("Uniform(1, 3)", "Uniform(3, 1)"), "Uniform(3, 1) is empty");
    refused(&emails(r#"Set(field: "plan", to: Const(1)), Set(field: "plan", to: Const(2))"#), "set twice");
    refused(
        &base.replace(r#"emit: ["EmailCopied"], set"#, r#"emit: ["EmailCopied"], write_value: "plan", set"#),
        "there is no `write`",
    );
    refused(&base.replace("version: 1)", "version: 0)"), "schema versions start at 1");
    refused(&base.replace(r#"Field(name: "plan""#, r#"Field(name: "email""#), "field `email` is given twice");
}
