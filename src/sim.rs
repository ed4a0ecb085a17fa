//! The kernel: virtual time, the event queue, seeded streams, distributions
//! and the event loop that runs a [`System`](crate::system::System).
//!
//! The kernel knows nothing of RON, the CLI or reports. It is a pure
//! function from (system, seed) to an [`Outcome`](crate::outcome::Outcome)
//! and, when asked, a trace.

pub mod dist;
pub mod queue;
pub mod rng;
pub mod time;
mod world;

pub use dist::Dist;
pub use queue::EventQueue;
pub use rng::{Stream, StreamKind};
pub use time::{SimDuration, SimTime, parse_duration};
pub use world::{RunOptions, SetupError, focused_records, run, run_bare, run_bare_until, run_with};

pub(crate) use world::refusal_label;
