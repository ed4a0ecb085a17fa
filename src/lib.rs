//! # faultline
//!
//! A deterministic, single-process discrete-event simulator of event-driven
//! microservice systems. A **scenario** describes services, a message bus
//! with its delivery semantics, a workload, a fault plan and the invariants
//! that must hold; a **run** of it under one seed produces an
//! [`Outcome`](outcome::Outcome): a verdict per invariant (with the story of
//! one violating entity), metrics and a **fingerprint** of the trace. Same
//! scenario and seed, same fingerprint, on any machine.
//!
//! ## Running a scenario from Rust
//!
//! ```
//! let src = r#"
//! Scenario(
//!     name: "tiny",
//!     duration: "10s",
//!     bus: Log(partitions: 2, latency: Const("1ms")),
//!     services: [
//!         Service(name: "order", on: [Accept(entity: "order", work: Const("1ms"), emit: ["OrderCreated"])]),
//!         Service(name: "invoice", consume: (topics: ["OrderCreated"]),
//!             on: [Handle(event: "OrderCreated", work: Const("2ms"), effect: "invoice-sent", terminal: true)]),
//!     ],
//!     workload: Poisson(rate: "20/s", entity: "order", keys: Uniform(100)),
//!     faults: [Crash(node: "invoice-1", at: "2s", down_for: "3s")],
//!     invariants: [NoLostEntities(entity: "order", deadline_after_heal: "2s")],
//! )"#;
//! let loaded = faultline::scenario::parse("tiny.ron", src).unwrap();
//! let outcome = faultline::sim::run(&loaded.system, 7).unwrap();
//! assert!(outcome.all_hold()); // the log kept the orders while invoice was down
//! ```
//!
//! ## Plugging in a service written in Rust
//!
//! A [`Service`](service::Service) only *describes* what it wants done: it
//! pushes commands into an [`Out`](service::Out) buffer and never touches
//! the bus, the clock or the random streams. Replace the behaviour of any
//! service in a compiled [`System`](system::System):
//!
//! ```
//! use std::sync::Arc;
//! use faultline::service::{Context, Message, Out, Service};
//! use faultline::sim::{Dist, SimDuration};
//!
//! /// An invoicer that sends every invoice twice: a bug the invariant catches.
//! #[derive(Debug)]
//! struct Stutter { work: Dist, effect: faultline::service::EffectId }
//!
//! impl Service for Stutter {
//!     fn work(&self, _msg: &Message) -> &Dist { &self.work }
//!     fn handle(&self, _ctx: &Context<'_>, _msg: &Message, out: &mut Out) {
//!         out.effect(self.effect);
//!         out.effect(self.effect);
//!         out.terminal();
//!     }
//! }
//!
//! # let src = r#"Scenario(name: "t", duration: "5s", bus: Ephemeral(latency: Const("1ms")),
//! #   services: [Service(name: "order", on: [Accept(entity: "order", work: Const("1ms"), emit: ["OrderCreated"])]),
//! #              Service(name: "invoice", consume: (topics: ["OrderCreated"]),
//! #                 on: [Handle(event: "OrderCreated", work: Const("1ms"), effect: "invoice-sent", terminal: true)])],
//! #   workload: Poisson(rate: "10/s", entity: "order", keys: Sequential),
//! #   invariants: [NoDuplicateEffects(effect: "invoice-sent")])"#;
//! let mut system = faultline::scenario::parse("t.ron", src).unwrap().system;
//! let effect = system.names.effect("invoice-sent");
//! system.services[1].behaviour = Arc::new(Stutter { work: Dist::Const(SimDuration::MILLISECOND), effect });
//! let outcome = faultline::sim::run(&system, 1).unwrap();
//! assert!(!outcome.all_hold());
//! ```
//!
//! ## Building a system without RON
//!
//! [`builder::Builder`] puts a system together from the scenario schema's
//! typed parts, compiles it with the same checks a file gets, and puts
//! custom services in place (see its module docs for an example).
//!
//! ## Layout
//! [`sim`] is the kernel (time, queue, streams, the loop); [`service`] the
//! handler interface; [`check`] the invariants; [`trace`] the event log and
//! fingerprint; [`scenario`] the RON files; [`builder`] systems built in
//! Rust; [`cli`] the command line.

#![warn(missing_docs)]

pub mod bench;
pub mod builder;
mod bus;
pub mod check;
pub mod cli;
mod fault;
pub mod format;
pub mod fuzz;
pub mod metrics;
pub mod outcome;
pub mod perfetto;
pub mod report;
pub mod scenario;
pub mod service;
pub mod shrink;
pub mod sim;
mod story;
pub mod sweep;
pub mod system;
pub mod trace;
