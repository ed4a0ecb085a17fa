//! Fault plans: what goes wrong, when and to whom, drawn once per seed
//! before the run starts, and how faults that overlap compose.
//!
//! - [`plan`] turns a scenario's fault specs into a [`plan::Plan`]: each
//!   scripted fault becomes one entry; each random fault becomes the spells
//!   its seed draws from the faults stream, in the order of the specs and
//!   from nothing else; crash points are kept as points the run counts.
//!   The plan is plain data: the event loop applies it.
//! - [`network`] is what a partition or a link fault covers, by endpoint.
//! - [`compose`] is how faults on one target add up: crashes and pauses
//!   hold it while any of them is active ([`compose::Holds`]); slowdowns and
//!   clock skews multiply ([`compose::Factors`]).
//!
//! Nothing here touches the event loop's state; `sim::world::faults` is
//! where the loop applies a plan entry's start and heal.

pub(crate) mod compose;
pub(crate) mod network;
pub(crate) mod plan;
