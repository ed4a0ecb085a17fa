//! Building a system in Rust, without writing RON.
//!
//! A [`Builder`] collects the same typed parts a scenario file holds
//! ([`crate::scenario::schema`]), compiles them with the same compiler (so
//! every check a file gets, a built system gets, and an error names the
//! part that is wrong), and then puts custom [`Service`]s in place of the
//! declarative behaviour of the services that name one. The constructors
//! below give each part with the defaults a file would have; every field
//! stays public, so struct update syntax sets the rest:
//!
//! ```
//! use faultline::builder::{self, Builder};
//! use faultline::scenario::schema::{Invariant, Keys, Service, State};
//!
//! let system = Builder::new("orders", "2m")
//!     .bus(builder::log(4, builder::exp("2ms")))
//!     .service(builder::service("order").on(builder::accept("order", builder::constant("1ms")).emit(&["OrderCreated"])))
//!     .service(Service {
//!         state: State::Durable,
//!         ..builder::service("invoice")
//!             .consumes(&["OrderCreated"])
//!             .on(builder::handle("OrderCreated", builder::exp("3ms")).effect("invoice-sent").terminal())
//!     })
//!     .workload(builder::poisson("20/s", "order", Keys::Uniform(100)))
//!     .invariant(Invariant::NoLostEntities { entity: "order".into(), deadline_after_heal: "30s".into() })
//!     .build()
//!     .unwrap();
//! assert!(faultline::sim::run(&system, 1).unwrap().all_hold());
//! ```
//!
//! What the builder compiles is an ordinary scenario: [`Builder::to_ron`]
//! writes it as a file `faultline run` reads.

use std::sync::Arc;

use crate::scenario::schema::{Bus, Dist, Fault, Handler, Invariant, Keys, Scenario, Service, Workload};
use crate::scenario::{self, ScenarioError};
use crate::service::Service as Behaviour;
use crate::system::{Names, System};

/// Makes a custom behaviour once the names are interned (its effect and
/// kind ids come from them).
type MakeBehaviour = Box<dyn FnOnce(&mut Names) -> Arc<dyn Behaviour>>;

/// A system being put together.
pub struct Builder {
    scenario: Scenario,
    behaviours: Vec<(String, MakeBehaviour)>,
}

/// A part with the defaults a scenario file gives it, read from `ron`.
fn with_defaults<T: serde::de::DeserializeOwned>(ron: &str) -> T {
    let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    options.from_str(ron).unwrap_or_else(|e| panic!("faultline's own default {ron}: {e}"))
}

/// A string as RON writes it (quoted, escaped).
fn quoted(s: &str) -> String {
    ron::to_string(s).expect("a string serializes")
}

/// Always `d` (e.g. `"1ms"`).
pub fn constant(d: &str) -> Dist {
    Dist::Const(d.to_string())
}

/// Exponential with mean `mean`.
pub fn exp(mean: &str) -> Dist {
    Dist::Exp { mean: mean.to_string() }
}

fn dist_ron(d: &Dist) -> String {
    ron::to_string(d).expect("a distribution serializes")
}

/// A Kafka-like log of `partitions` per topic, its other settings at their defaults.
pub fn log(partitions: u32, latency: Dist) -> Bus {
    with_defaults(&format!("Log(partitions: {partitions}, latency: {})", dist_ron(&latency)))
}

/// A RabbitMQ-like queue bus, its settings at their defaults.
pub fn queue(latency: Dist) -> Bus {
    with_defaults(&format!("Queue(latency: {})", dist_ron(&latency)))
}

/// Fire-and-forget pub/sub.
pub fn ephemeral(latency: Dist) -> Bus {
    with_defaults(&format!("Ephemeral(latency: {})", dist_ron(&latency)))
}

/// A service called `name` with one instance, one worker and no handler.
pub fn service(name: &str) -> Service {
    with_defaults(&format!("Service(name: {})", quoted(name)))
}

/// The entry handler that accepts the workload's `entity`.
pub fn accept(entity: &str, work: Dist) -> Handler {
    with_defaults(&format!("Accept(entity: {}, work: {})", quoted(entity), dist_ron(&work)))
}

/// A handler of the consumed kind `event`.
pub fn handle(event: &str, work: Dist) -> Handler {
    with_defaults(&format!("Handle(event: {}, work: {})", quoted(event), dist_ron(&work)))
}

/// Poisson arrivals at `rate` (e.g. `"50/s"`) of `entity`.
pub fn poisson(rate: &str, entity: &str, keys: Keys) -> Workload {
    Workload::Poisson {
        rate: rate.to_string(),
        entity: entity.to_string(),
        fields: Vec::new(),
        version: None,
        keys,
        start: None,
        stop: None,
        shape: Default::default(),
    }
}

/// A crash of `node` at `at` for `down_for`.
pub fn crash(node: &str, at: &str, down_for: &str) -> Fault {
    Fault::Crash { node: node.to_string(), at: at.to_string(), down_for: down_for.to_string() }
}

impl Service {
    /// With this handler too.
    pub fn on(mut self, handler: Handler) -> Service {
        self.on.push(handler);
        self
    }

    /// Consuming these topics too.
    pub fn consumes(mut self, topics: &[&str]) -> Service {
        self.consume.topics.extend(topics.iter().map(|t| t.to_string()));
        self
    }
    /// Autoscaled between `min` and `max` instances at `target`
    /// utilisation, with the HPA's defaults for the rest; its `instances`
    /// (at least `min`) is the count it starts with.
    pub fn autoscale(mut self, min: u32, max: u32, target: f64) -> Service {
        self.instances = self.instances.max(min);
        self.autoscale = Some(crate::scenario::schema::Autoscale {
            min,
            max,
            target,
            every: None,
            startup: None,
            stabilization: None,
            tolerance: None,
        });
        self
    }
}

impl Handler {
    /// Publishing these kinds too.
    pub fn emit(mut self, kinds: &[&str]) -> Handler {
        let (Handler::Accept { emit, .. } | Handler::Handle { emit, .. }) = &mut self;
        emit.extend(kinds.iter().map(|k| k.to_string()));
        self
    }

    /// Ending the entity.
    pub fn terminal(mut self) -> Handler {
        let (Handler::Accept { terminal, .. } | Handler::Handle { terminal, .. }) = &mut self;
        *terminal = true;
        self
    }

    /// Writing its entity under the message's key in `table`.
    pub fn write(mut self, table: &str) -> Handler {
        let (Handler::Accept { write, .. } | Handler::Handle { write, .. }) = &mut self;
        *write = Some(table.to_string());
        self
    }

    /// Applying `effect` (a `Handle` only; an `Accept` applies none, and
    /// stays as it is).
    pub fn effect(mut self, name: &str) -> Handler {
        if let Handler::Handle { effect, .. } = &mut self {
            *effect = Some(name.to_string());
        }
        self
    }
}

/// Adds `x` as a scenario writes one part (`one`) or several (`several`):
/// the first alone, and from the second on all of them in the list.
fn one_or_several<T>(one: &mut Option<T>, several: &mut Vec<T>, x: T) {
    match one.take() {
        None if several.is_empty() => *one = Some(x),
        first => {
            several.extend(first);
            several.push(x);
        }
    }
}

impl Builder {
    /// A system called `name` that runs for `duration` (e.g. `"10m"`).
    pub fn new(name: &str, duration: &str) -> Builder {
        let scenario: Scenario =
            with_defaults(&format!("Scenario(name: {}, duration: {}, services: [])", quoted(name), quoted(duration)));
        Builder { scenario, behaviours: Vec::new() }
    }

    /// With this bus; a second bus makes them several (`buses`), each then
    /// needing a name and its topics.
    pub fn bus(mut self, bus: Bus) -> Builder {
        one_or_several(&mut self.scenario.bus, &mut self.scenario.buses, bus);
        self
    }

    /// With this service.
    pub fn service(mut self, service: Service) -> Builder {
        self.scenario.services.push(service);
        self
    }

    /// With this workload; a second one makes them several (`workloads`).
    pub fn workload(mut self, workload: Workload) -> Builder {
        one_or_several(&mut self.scenario.workload, &mut self.scenario.workloads, workload);
        self
    }

    /// With this fault.
    pub fn fault(mut self, fault: Fault) -> Builder {
        self.scenario.faults.push(fault);
        self
    }

    /// With this invariant.
    pub fn invariant(mut self, invariant: Invariant) -> Builder {
        self.scenario.invariants.push(invariant);
        self
    }

    /// The run's default seed.
    pub fn seed(mut self, seed: u64) -> Builder {
        self.scenario.seed = seed;
        self
    }

    /// Service `service` behaves as `make` returns (given the interned
    /// names, for effect and kind ids) instead of as its handlers say. Its
    /// handlers still declare what it consumes and accepts, for the checks.
    pub fn behaviour(
        mut self,
        service: &str,
        make: impl FnOnce(&mut Names) -> Arc<dyn Behaviour> + 'static,
    ) -> Builder {
        self.behaviours.push((service.to_string(), Box::new(make)));
        self
    }

    /// The scenario as it stands.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The scenario as a RON file that `faultline run` reads (custom
    /// behaviours are code, and not in it).
    pub fn to_ron(&self) -> String {
        scenario::to_ron(&self.scenario)
    }

    /// The system, compiled and checked as a scenario file would be: a
    /// problem is told against the scenario's RON text (see
    /// [`Builder::to_ron`]), `<builder>` standing for the file. A behaviour
    /// for a service that does not exist is a problem too.
    pub fn build(self) -> Result<System, ScenarioError> {
        let file = "<builder>";
        let text = scenario::to_ron(&self.scenario);
        let mut system = scenario::parse(file, &text)?.system;
        for (name, make) in self.behaviours {
            let Some(i) = system.services.iter().position(|s| s.name == name) else {
                let message = format!("a behaviour is given for service `{name}`, which the system does not have");
                return Err(ScenarioError::Unreadable { path: file.to_string(), message });
            };
            system.services[i].behaviour = make(&mut system.names);
        }
        Ok(system)
    }
}
