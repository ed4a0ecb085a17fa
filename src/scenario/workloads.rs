//! Compiling the workloads: one or several, each with its entity, entry
//! service, arrivals (Poisson, regular, replayed from a file), keys, request
//! fields and traffic shape.

use super::*;

impl Compiler<'_> {
    /// The workload of `entry` whose entity service `service` accepts (in a
    /// handler at `at`); one is chosen when none creates it (an error).
    pub(super) fn accepted_workload(&mut self, at: &[P], service: &str, entity: &str, entry: &[(&str, Kind)]) -> usize {
        let w = entry.iter().position(|e| e.0 == entity);
        match (w, entry) {
            (Some(_), _) => {}
            (None, [(only, _)]) => {
                let message = format!("service `{service}` accepts `{entity}` but the workload creates `{only}`");
                self.err(at, message, None);
            }
            _ => {
                let kinds: Vec<String> = entry.iter().map(|e| format!("`{}`", e.0)).collect();
                let help = Some(format!("the workloads create {}", kinds.join(", ")));
                self.err(at, format!("service `{service}` accepts `{entity}`, which no workload creates"), help);
            }
        }
        w.unwrap_or(0)
    }

    /// The scenario has `workload` or `workloads`, not both, not neither,
    /// and no two workloads create one entity kind.
    pub(super) fn one_or_several_workloads(&mut self, s: &Scenario, workloads: &[(Vec<P>, &schema::Workload)]) {
        match (&s.workload, s.workloads.is_empty()) {
            (None, true) => {
                let help =
                    "add `workload: Poisson(rate: ..., entity: ..., keys: ...)`, or `workloads: [...]` for several";
                self.err(&[], "the scenario has no workload", Some(help.into()));
            }
            (Some(_), false) => {
                let help = "one workload: `workload: ...`; several: `workloads: [...]` alone";
                self.err(&[P::F("workloads")], "both `workload` and `workloads` are given", Some(help.into()));
            }
            _ => {}
        }
        for (i, (here, w)) in workloads.iter().enumerate() {
            if workloads[..i].iter().any(|(_, o)| o.entity() == w.entity()) {
                let at = [here.as_slice(), &[P::F("entity")]].concat();
                let help = Some("each workload creates its own entity kind: merge them or rename one".into());
                self.err(&at, format!("two workloads create `{}`", w.entity()), help);
            }
        }
    }

    /// Each workload: its arrivals, keys and entry service.
    pub(super) fn workloads(
        &mut self,
        s: &Scenario,
        workloads: &[(Vec<P>, &schema::Workload)],
        (duration, limits): (Option<SimDuration>, &Limits),
        accepting: &[(usize, usize)],
        entry: &[(&str, Kind)],
        names: &mut Names,
    ) -> Option<Vec<WorkloadSpec>> {
        let mut out = Vec::new();
        let mut expected_total = 0u64;
        for (w, (here, wl)) in workloads.iter().enumerate() {
            let serving: Vec<usize> = accepting.iter().filter(|a| a.1 == w).map(|a| a.0).collect();
            let spec = self.workload(s, here, wl, duration, limits, &serving, entry[w].1, &mut expected_total);
            let (fields, version) = self.request_fields(here, wl, names);
            out.push(spec.map(|spec| WorkloadSpec { fields, version, ..spec }));
        }
        out.into_iter().collect()
    }

    /// The fields of the requests of the workload `wl` (at `here`) and
    /// their schema version.
    pub(super) fn request_fields(
        &mut self,
        here: &[P],
        wl: &schema::Workload,
        names: &mut Names,
    ) -> (Vec<(u8, FieldValue)>, u16) {
        let (fields, version) = wl.payload();
        let mut out = Vec::new();
        for (k, f) in fields.iter().enumerate() {
            let at = |x: &'static str| [here, &[P::F("fields"), P::I(k), P::F(x)]].concat();
            let slot = self.field(&at("name"), &f.name, names);
            if fields[..k].iter().any(|o| o.name == f.name) {
                self.err(&at("name"), format!("field `{}` is given twice", f.name), None);
            }
            let value = match f.value {
                schema::FieldValue::Const(v) => FieldValue::Const(v),
                schema::FieldValue::Uniform(lo, hi) => {
                    if lo > hi {
                        self.err(&at("value"), format!("Uniform({lo}, {hi}) is empty"), Some("lo <= hi".into()));
                    }
                    FieldValue::Uniform(lo, hi.max(lo))
                }
                schema::FieldValue::Sequential => FieldValue::Sequential,
                schema::FieldValue::Key => FieldValue::Key,
            };
            out.push((slot, value));
        }
        if version == Some(0) {
            self.err(&[here, &[P::F("version")]].concat(), "schema versions start at 1", None);
        }
        (out, version.unwrap_or(1))
    }

    /// The workload `wl` written at `here`: its arrivals, keys and entry
    /// service (the one of `serving`); adds the entities it is expected to
    /// create to `expected_total`, which `entities_max` bounds.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn workload(
        &mut self,
        s: &Scenario,
        here: &[P],
        wl: &schema::Workload,
        duration: Option<SimDuration>,
        limits: &Limits,
        serving: &[usize],
        request: Kind,
        expected_total: &mut u64,
    ) -> Option<WorkloadSpec> {
        let wat = |f: &'static str| [here, &[P::F(f)]].concat();
        let entity = wl.entity();
        let (start, stop) = match wl {
            schema::Workload::Poisson { start, stop, .. }
            | schema::Workload::Regular { start, stop, .. }
            | schema::Workload::Replay { start, stop, .. } => (start, stop),
        };
        let start = start.as_ref().map_or(Some(SimDuration::ZERO), |t| self.duration(&wat("start"), t));
        let stop = stop.as_ref().map_or(duration, |t| self.duration(&wat("stop"), t));
        let arrivals = self.arrivals(here, wl);
        let target = match serving {
            [one] => Some(*one),
            [] => {
                self.err(
                    &wat("entity"),
                    format!("no service accepts `{entity}`"),
                    Some(format!("give the entry service a handler Accept(entity: \"{entity}\", ...)")),
                );
                None
            }
            [_, second, ..] => {
                self.err(
                    &[P::F("services"), P::I(*second), P::F("name")],
                    format!("more than one service accepts `{entity}`"),
                    Some("exactly one service is the entry point".into()),
                );
                None
            }
        };
        if let (Some(a), Some(d)) = (start, duration)
            && a >= d
        {
            let help = Some(format!("start it before the end of the run ({})", s.duration));
            self.err(&wat("start"), "the workload starts when the run has ended: no entity would exist", help);
        } else if let (Some(a), Some(b)) = (start, stop)
            && a >= b
        {
            self.err(&wat("stop"), "the workload stops before it starts", None);
        }
        if let (Some(arrivals), Some(a), Some(b)) = (&arrivals, start, stop) {
            *expected_total = expected_total.saturating_add(arrivals.expected(a, b));
            if *expected_total > limits.entities_max {
                let several = if workloads_written(s) > 1 { " (with the workloads before it)" } else { "" };
                self.err(
                    &wat(if matches!(wl, schema::Workload::Replay { .. }) { "file" } else { "rate" }),
                    format!(
                        "this workload would create about {expected_total} entities{several}, above entities_max ({})",
                        limits.entities_max
                    ),
                    Some("lower the rate or the duration, or raise limits.entities_max".into()),
                );
            }
        }
        let (duration, arrivals, start, stop, target) = (duration?, arrivals?, start?, stop?, target?);
        let (interarrival_mean, regular, count, keys, shape, replay) = arrivals.into_parts();
        Some(WorkloadSpec {
            entity: entity.to_string(),
            request,
            target,
            interarrival_mean,
            regular,
            count,
            keys,
            start: SimTime::ZERO + start,
            stop: SimTime::ZERO + stop.min(duration),
            shape,
            replay,
            fields: Vec::new(),
            version: 1,
        })
    }

    /// How the workload written at `here` draws or replays its arrivals.
    pub(super) fn arrivals(&mut self, here: &[P], wl: &schema::Workload) -> Option<Arrivals> {
        let wat = |f: &'static str| [here, &[P::F(f)]].concat();
        match wl {
            schema::Workload::Poisson { rate, keys, shape, .. }
            | schema::Workload::Regular { rate, keys, shape, .. } => {
                let (regular, count) = match wl {
                    schema::Workload::Regular { count, .. } => (true, *count),
                    _ => (false, None),
                };
                if count == Some(0) {
                    self.err(&wat("count"), "a workload of no arrivals", Some("expected at least 1".into()));
                }
                let gap = self.rate(&wat("rate"), rate);
                let keys = self.keys(here, keys);
                let shape = self.shape(&wat("shape"), shape);
                Some(Arrivals::Drawn { gap: gap?, regular, count, keys, shape })
            }
            schema::Workload::Replay { file, .. } => self.replay(&wat("file"), file).map(Arrivals::Replay),
        }
    }

    /// The arrivals recorded in `file` (relative to the scenario's
    /// directory); a problem in it is told at `at` with the file's own line
    /// and column.
    pub(super) fn replay(&mut self, at: &[P], file: &str) -> Option<Vec<(SimDuration, u64)>> {
        let path = self.dir.join(file);
        let shown = path.display().to_string();
        let text = match read_text(&shown) {
            Ok(t) => t,
            Err(e) => {
                let message = match e {
                    ScenarioError::Read { source, .. } => format!("cannot read {shown}: {source}"),
                    ScenarioError::Unreadable { message, .. } => format!("cannot read {shown}: {message}"),
                    ScenarioError::Invalid { diagnostics, .. } => {
                        let d = diagnostics.first().map_or(String::new(), |d| d.message.clone());
                        format!("cannot read {shown}: {d}")
                    }
                };
                let help = Some("the file is found relative to the scenario file's directory".into());
                self.err(at, message, help);
                return None;
            }
        };
        match replay::parse(&text) {
            Ok(arrivals) => Some(arrivals),
            Err(p) => {
                let help =
                    Some("each line is `time,key`: a time such as 1.5 or \"1500ms\", then an unsigned key".into());
                self.err(at, format!("{shown}:{}:{}: {}", p.line, p.col, p.message), help);
                None
            }
        }
    }

    /// The keys of the workload written at `here`.
    pub(super) fn keys(&mut self, here: &[P], keys: &schema::Keys) -> KeyDist {
        match keys {
            schema::Keys::Uniform(0) => {
                self.err(
                    &[here, &[P::F("keys"), P::I(0)]].concat(),
                    "keys Uniform(0) has no keys",
                    Some("expected at least 1".into()),
                );
                KeyDist::Uniform(1)
            }
            schema::Keys::Uniform(n) => KeyDist::Uniform(*n),
            schema::Keys::Sequential => KeyDist::Sequential,
        }
    }

    /// A rate factor of a shape (at `at`): above zero and at most 1000.
    pub(super) fn factor(&mut self, at: &[P], f: f64) -> f64 {
        if !(f.is_finite() && f > 0.0 && f <= 1000.0) {
            let help = Some("expected a factor above 0 and at most 1000".into());
            self.err(at, format!("factor {f} is out of range"), help);
            return 1.0;
        }
        f
    }

    /// How the workload's rate changes over time (the shape at `here`).
    pub(super) fn shape(&mut self, here: &[P], shape: &schema::Shape) -> RateShape {
        let at = |f: &'static str| [here, &[P::I(0), P::F(f)]].concat();
        let time = |c: &mut Self, path: &[P], t: &Option<String>, default: SimDuration| match t {
            Some(t) => c.duration(path, t).unwrap_or(default),
            None => default,
        };
        match shape {
            schema::Shape::Constant => RateShape::Constant,
            schema::Shape::Burst { every, lasting, factor, at: first } => {
                let every = self.positive(&at("every"), &Some(every.clone()), 1);
                let lasting = self.duration(&at("lasting"), lasting).unwrap_or(SimDuration::ZERO);
                if lasting >= every {
                    self.err(&at("lasting"), "a burst lasts as long as the time between bursts", None);
                }
                let factor = self.factor(&at("factor"), *factor);
                let first = time(self, &at("at"), first, every);
                RateShape::Burst { every, lasting, factor, at: SimTime::ZERO + first }
            }
            schema::Shape::Steps(steps) => {
                let mut out = Vec::new();
                for (i, st) in steps.iter().enumerate() {
                    let sat = |f: &'static str| [here, &[P::I(0), P::I(i), P::F(f)]].concat();
                    let t = self.duration(&sat("at"), &st.at).unwrap_or(SimDuration::ZERO);
                    if out.last().is_some_and(|(prev, _)| SimTime::ZERO + t <= *prev) {
                        self.err(&sat("at"), "steps must be in time order", None);
                    }
                    out.push((SimTime::ZERO + t, self.factor(&sat("factor"), st.factor)));
                }
                RateShape::Steps(out)
            }
            schema::Shape::Ramp { to, over, from, at: start } => {
                let over = self.positive(&at("over"), &Some(over.clone()), 1);
                let to = self.factor(&at("to"), *to);
                let from = from.map_or(1.0, |f| self.factor(&at("from"), f));
                let start = time(self, &at("at"), start, SimDuration::ZERO);
                RateShape::Ramp { from, to, at: SimTime::ZERO + start, over }
            }
            schema::Shape::Daily { low, high, peak_at, period } => {
                let (low, high) = (self.factor(&at("low"), *low), self.factor(&at("high"), *high));
                if low > high {
                    self.err(&at("low"), format!("the trough ({low}) is above the peak ({high})"), None);
                }
                let period = time(self, &at("period"), period, SimDuration::from_secs(86_400));
                if period == SimDuration::ZERO {
                    self.err(&at("period"), "a cycle of no time", None);
                }
                let peak_at = time(self, &at("peak_at"), peak_at, SimDuration::from_secs(43_200));
                RateShape::Daily { low, high, peak_at, period }
            }
        }
    }
}
