//! The one integration-test binary: scenarios, determinism, bad input, the
//! CLI and kernel properties that need a whole system.

mod accounting;
mod autoscale;
mod bad_input;
mod builder;
mod buses;
mod channels;
mod claims;
mod cli;
mod compose;
mod determinism;
mod faults;
mod fuzz;
mod hardening;
mod kernel;
mod metrics;
mod network;
mod patterns;
mod payloads;
mod props;
mod queues;
mod rehydrate;
mod report;
mod rewind;
mod routing;
mod scenarios;
mod shrink;
mod state;
mod stories;
mod support;
mod sweep;
mod tidy;
mod topics;
mod validation;
mod verdicts;
mod workloads;
