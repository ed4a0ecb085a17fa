//! The library API: a system built in Rust without RON text, custom
//! services that write table rows and state-machine moves through `Out`
//! (seen by the convergence and business-rule checks), and a custom
//! service's own keys that never meet faultline's rows.

use std::sync::Arc;

use faultline::builder::{self, Builder};
use faultline::scenario::schema::{Invariant, Keys, MachineSchema, Service, State};
use faultline::service::{Context, Message, Out, Service as Behaviour};
use faultline::sim::{Dist, SimDuration};

/// Users write each change's email; billing keeps a copy; billing-1 is
/// down for 30 s on a log, so the copy catches up.
fn emails() -> Builder {
    Builder::new("built", "3m")
        .bus(builder::log(4, builder::exp("2ms")))
        .service(Service {
            state: State::Durable,
            ..builder::service("users")
                .on(builder::accept("change", builder::constant("1ms")).write("email").emit(&["EmailChanged"]))
        })
        .service(Service {
            state: State::Durable,
            // The state the rule watches; the declarative handler never enters it.
            machine: Some(MachineSchema { terminal: vec!["copied".into()], timeouts: vec![] }),
            ..builder::service("billing").consumes(&["EmailChanged"]).on(builder::handle(
                "EmailChanged",
                builder::exp("2ms"),
            )
            .write("email")
            .terminal())
        })
        .workload(builder::poisson("50/s", "change", Keys::Uniform(200)))
        .fault(builder::crash("billing-1", "1m", "30s"))
        .invariant(Invariant::NoLostEntities { entity: "change".into(), deadline_after_heal: "30s".into() })
        .invariant(Invariant::ReplicaConvergence {
            source: "users".into(),
            replica: "billing".into(),
            table: "email".into(),
        })
        .invariant(Invariant::LeadsTo {
            from: "accepted".into(),
            to: vec!["state copied".into()],
            within: "1m".into(),
            entity: None,
        })
}

#[test]
fn a_built_system_runs_as_the_same_scenario_read_from_its_file() {
    let b = emails();
    let text = b.to_ron();
    let built = b.build().unwrap_or_else(|e| panic!("{e}"));
    let parsed = faultline::scenario::parse("built.ron", &text).unwrap_or_else(|e| panic!("{e}")).system;
    for seed in 0..3 {
        let (x, y) = (faultline::sim::run(&built, seed).unwrap(), faultline::sim::run(&parsed, seed).unwrap());
        assert_eq!(x.fingerprint, y.fingerprint, "seed {seed}");
    }
    // The declarative billing never enters `copied`: the rule is violated.
    let o = faultline::sim::run(&built, 1).unwrap();
    assert!(o.invariants[0].holds() && o.invariants[1].holds(), "{:?}", o.invariants);
    assert!(o.invariants[2].violated());
}

/// Billing written in Rust: copies the row through `Out::write`, marks the
/// entity `copied` through `Out::transition`, and puts its own bookkeeping
/// under keys that would be faultline's rows if they shared one space.
#[derive(Debug)]
struct Copier {
    work: Dist,
    table: u16,
    copied: u16,
    /// Add this to the value copied (0: a faithful copy).
    skew: i64,
}

impl Behaviour for Copier {
    fn work(&self, _msg: &Message) -> &Dist {
        &self.work
    }
    fn handle(&self, ctx: &Context<'_>, msg: &Message, out: &mut Out) {
        out.write(self.table, msg.key, msg.entity.0, msg.entity.0 as i64 + self.skew);
        // After the row, under the key faultline keeps the row's version at
        // (and its value, and a machine's state): the service's own space.
        let row = (u64::from(self.table) << 48) | msg.key;
        let seen = ctx.durable(row).unwrap_or(0);
        for key in [row, row | 1 << 63, (0xFFFE << 48) | msg.entity.0] {
            out.put(true, key, seen - 1_000_000);
        }
        out.transition(0, self.copied);
        out.terminal();
    }
}

fn with_copier(skew: i64) -> faultline::system::System {
    emails()
        .behaviour("billing", move |names| {
            Arc::new(Copier {
                work: Dist::Const(SimDuration::MILLISECOND),
                table: names.table("email"),
                copied: names.state("copied"),
                skew,
            })
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_custom_service_writes_rows_and_moves_that_the_checks_see() {
    for seed in 0..3 {
        let o = faultline::sim::run(&with_copier(0), seed).unwrap();
        // Its rows converge although its own keys equal theirs, and its
        // moves feed the business rule.
        assert!(o.all_hold(), "seed {seed}: {:?}", o.invariants);
        assert!(o.invariants[1].counts["rows"] > 150);
        assert!(o.invariants[2].counts["followed_in_time"] > 5000);
        // A wrong copy is caught: the newest version, another value.
        let o = faultline::sim::run(&with_copier(1), seed).unwrap();
        let c = &o.invariants[1].counts;
        assert_eq!(c["diverged_same_version"], c["rows"], "seed {seed}: {c:?}");
    }
}

#[test]
fn a_bad_build_is_told_like_a_bad_file() {
    let e = Builder::new("empty", "1m").build().expect_err("no bus, no service, no workload").to_string();
    assert!(e.starts_with("<builder>:"), "{e}");
    assert!(e.contains("the scenario has no bus") && e.contains("the scenario has no workload"), "{e}");
    let e = emails()
        .behaviour("biling", |_| {
            Arc::new(Copier { work: Dist::Const(SimDuration::ZERO), table: 0, copied: 0, skew: 0 })
        })
        .build()
        .expect_err("no such service")
        .to_string();
    assert!(e.contains("service `biling`, which the system does not have"), "{e}");
    // Two buses make them several, which then need names.
    let e = emails().bus(builder::ephemeral(builder::constant("1ms"))).build().expect_err("unnamed").to_string();
    assert!(e.contains("each of several buses needs a name"), "{e}");
}
