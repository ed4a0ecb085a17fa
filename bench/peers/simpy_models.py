"""SimPy 4 twins of faultline's validation scenarios, for bench/peers/compare.py.

Each model mirrors one scenario under scenarios/validation/:

  mm1-rho09  scenarios/validation/mm1-rho09.ron  M/M/1, lambda 0.9/s, mean service 1 s
  tandem     scenarios/validation/tandem.ron     order -> inventory -> invoice,
                                                 lambda 0.4/s, means 1, 1.25, 1.5 s

The parameters are repeated here on purpose (the peer must not depend on
faultline's parser); compare.py checks them against the .ron files before it
runs anything, so the two cannot drift apart silently.

Both models are written the way a SimPy user would write them: one process
per customer, one simpy.Resource(capacity=1) per station, FIFO (SimPy's
default request order), instant transfer between stations. The system starts
empty and nothing is discarded as warm-up, exactly like faultline: a
customer's sojourn runs from its arrival to the end of its service at the last
station, and only customers that finish before `duration` count.

Run one replication by hand:  python simpy_models.py tandem --seed 1 --duration 40000
"""

import argparse
import random
import time

import simpy

# name -> (arrival rate per second, mean service seconds of each station in
# order, analytic mean sojourn). The analytic values are those stated in the
# scenario headers: W = 1/(mu - lambda) per station, summed over the tandem
# (Jackson's theorem).
MODELS = {
    "mm1-rho09": (0.9, (1.0,), 1.0 / (1.0 - 0.9)),
    "tandem": (
        0.4,
        (1.0, 1.25, 1.5),
        sum(1.0 / (1.0 / m - 0.4) for m in (1.0, 1.25, 1.5)),
    ),
}


def _customer(env, stations, rng, stats):
    arrived = env.now
    for resource, rate in stations:
        # The context manager releases the worker when service ends, which is
        # what hands it to the next customer in the FIFO queue.
        with resource.request() as req:
            yield req
            yield env.timeout(rng.expovariate(rate))
    # Only reached if the last service ends before env.run(until=...) stops,
    # which is exactly "finished before the end of the run".
    stats[0] += 1
    stats[1] += env.now - arrived


def _source(env, arrival_rate, stations, rng, stats, stop):
    # Exponential gaps from t = 0 make a Poisson process; like faultline's
    # Poisson workload, no arrival happens at or after `stop`.
    while True:
        gap = rng.expovariate(arrival_rate)
        if env.now + gap >= stop:
            return
        yield env.timeout(gap)
        env.process(_customer(env, stations, rng, stats))


def _events_processed(env):
    # SimPy has no public event counter. Every scheduled event takes an id
    # from env._eid, and those still in env._queue were never processed, so
    # the difference is the count of processed events (including the
    # internal "until" event, a rounding error). Reading two internals after
    # the run costs nothing during it; if a SimPy release renames them we
    # simply report no count rather than slow the run down with a hook.
    try:
        return next(env._eid) - len(env._queue)
    except (AttributeError, TypeError):
        return None


def run_model(name, seed, duration, stop=None):
    """One replication of MODELS[name]; arrivals stop at `stop` (default: the duration).

    Returns (mean_sojourn_s, customers_completed, wall_seconds, events) where
    wall_seconds covers env.run() only, matching faultline's wall_ms (which
    also excludes parsing and process start), and events may be None.
    """
    arrival_rate, service_means, _analytic = MODELS[name]
    rng = random.Random(seed)
    env = simpy.Environment()
    # expovariate takes a rate; converting once here keeps the division out
    # of the per-customer path.
    stations = [(simpy.Resource(env, capacity=1), 1.0 / m) for m in service_means]
    # [completed customers, summed sojourn]: running sums instead of a list
    # keep memory flat over the ~90k customers of a long run.
    stats = [0, 0.0]
    env.process(_source(env, arrival_rate, stations, rng, stats, duration if stop is None else stop))

    started = time.perf_counter()
    env.run(until=duration)
    wall = time.perf_counter() - started

    completed, total = stats
    mean = total / completed if completed else float("nan")
    return mean, completed, wall, _events_processed(env)


def mm1_rho09(seed, duration):
    """M/M/1 at rho = 0.9 (scenarios/validation/mm1-rho09.ron)."""
    return run_model("mm1-rho09", seed, duration)


def tandem(seed, duration):
    """Order -> inventory -> invoice tandem (scenarios/validation/tandem.ron)."""
    return run_model("tandem", seed, duration)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, required=True, help="simulated seconds")
    args = parser.parse_args()
    mean, completed, wall, events = run_model(args.model, args.seed, args.duration)
    print(
        f"{args.model} seed={args.seed}: mean sojourn {mean:.4f} s over {completed} customers "
        f"(analytic {MODELS[args.model][2]:.4f} s), {wall:.3f} s wall, {events} events"
    )


if __name__ == "__main__":
    main()
