#!/usr/bin/env python3
"""Benchmark faultline against SimPy on the same queueing models.

    python3 bench/peers/compare.py            # 20 seeds, both models
    python3 bench/peers/compare.py --seeds 5  # quick run

Runs faultline (scenarios/validation/*.ron) and the SimPy twins in
simpy_models.py for seeds 1..N, one run at a time on one CPU, and prints one
table: mean sojourn with a 95% CI from each, their difference, and completed
customers per wall-clock second of each with the ratio. See README.md.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(HERE, ".venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
FAULTLINE = os.path.join(REPO, "target", "release", "faultline")
# SimPy 4's API (Resource.request as a context manager, env.run(until=)) is
# what simpy_models.py is written against.
SIMPY_REQUIREMENT = "simpy>=4,<5"

# Each model name is both the scenario file stem and the key in
# simpy_models.MODELS.
MODEL_NAMES = ("mm1-rho09", "tandem")

SPEED_TARGET = 50.0

# Two-sided 95% Student t quantiles by degrees of freedom, so the CI needs no
# SciPy in the venv. For df between entries the next lower df is used, which
# only ever widens the interval.
T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365,
    8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145,
    15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086,
    21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056,
    27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000,
    120: 1.980,
}


def log(msg):
    # Progress goes to stderr so stdout carries only the result table.
    print(msg, file=sys.stderr, flush=True)


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def ensure_venv_and_reexec():
    """Make sure we run inside bench/peers/.venv with SimPy, never a system install.

    The venv is created on first use; later runs only check that SimPy imports
    (which also repairs a venv left half-built by an interrupted first run).
    Re-executing this script under the venv's interpreter lets the rest of the
    file import simpy_models directly instead of shelling out per seed.
    """
    if in_venv():
        return
    if not os.path.exists(VENV_PYTHON):
        log(f"creating virtual environment {os.path.relpath(VENV, REPO)}")
        if subprocess.run([sys.executable, "-m", "venv", VENV]).returncode != 0:
            # Debian splits venv/ensurepip out of python3; say so instead of
            # leaving only the traceback.
            raise SystemExit("error: python3 -m venv failed (on Debian: apt-get install python3-venv)")
    has_simpy = subprocess.run(
        [VENV_PYTHON, "-c", "import simpy"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ).returncode == 0
    if not has_simpy:
        log(f"installing {SIMPY_REQUIREMENT} into the venv")
        subprocess.run(
            [VENV_PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", SIMPY_REQUIREMENT],
            check=True,
        )
    os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__), *sys.argv[1:]])


def build_faultline():
    log("building faultline (cargo build --release)")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)


def pin_to_one_cpu():
    """Pin this process, and so every child it starts, to a single CPU.

    The speed target is per core; pinning makes that literal for both
    simulators and keeps the scheduler from migrating a run mid-measurement.
    Returns the CPU used, or None where affinity is not supported.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def scenario_path(name):
    return os.path.join(REPO, "scenarios", "validation", f"{name}.ron")


def parse_seconds(text):
    m = re.fullmatch(r"([0-9.]+)(ms|s)", text)
    if not m:
        raise ValueError(f"unsupported duration {text!r}")
    return float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)


def scenario_parameters(name):
    """Read duration, arrival rate and service means from the .ron file.

    A few regexes rather than a RON parser: they only need to recognise the
    shapes used by the validation scenarios, and any mismatch is reported
    instead of guessed around.
    """
    with open(scenario_path(name), encoding="utf-8") as f:
        # Drop // comments so the analytic notes in the header are not matched.
        text = re.sub(r"//[^\n]*", "", f.read())
    duration = re.search(r'\bduration:\s*"([^"]+)"', text)
    stop = re.search(r'\bstop:\s*"([^"]+)"', text)
    rate = re.search(r'Poisson\(\s*rate:\s*"([0-9.]+)/s"', text)
    means = re.findall(r'Exp\(\s*mean:\s*"([^"]+)"\s*\)', text)
    if not (duration and rate and means):
        raise SystemExit(f"error: cannot read the parameters of {scenario_path(name)}")
    duration_s = parse_seconds(duration.group(1))
    stop_s = parse_seconds(stop.group(1)) if stop else duration_s
    return (duration_s, stop_s), float(rate.group(1)), tuple(parse_seconds(m) for m in means)


def check_models_match(models):
    """Refuse to compare if a scenario and its SimPy twin have drifted apart."""
    durations = {}
    for name in MODEL_NAMES:
        duration, rate, means = scenario_parameters(name)
        peer_rate, peer_means, _ = models[name]
        if not (math.isclose(rate, peer_rate) and len(means) == len(peer_means)
                and all(math.isclose(a, b) for a, b in zip(means, peer_means))):
            raise SystemExit(
                f"error: {name}: the scenario has rate {rate}/s and service means {means}, "
                f"but simpy_models.py has {peer_rate}/s and {peer_means}; update simpy_models.py"
            )
        durations[name] = duration
    return durations


def run_faultline(name, seed):
    proc = subprocess.run(
        [FAULTLINE, "run", scenario_path(name), "--seed", str(seed), "--json"],
        cwd=REPO, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"error: faultline {name} seed {seed} exited {proc.returncode}:\n{proc.stderr}")
    out = json.loads(proc.stdout)
    m = out["metrics"]
    return m["e2e_latency_s"]["mean"], m["completed"], out["wall_ms"] / 1000.0, out["events"]


def median_of(repeat, run):
    """Runs `run` `repeat` times; its results, with the median wall time.

    Both simulators are deterministic per seed, so only the wall time varies
    between repetitions; the median discards a run that a neighbour on a
    shared machine happened to slow down (faultline's runs last tens of
    milliseconds, so one interruption would otherwise show)."""
    runs = [run() for _ in range(repeat)]
    walls = sorted(r[2] for r in runs)
    mean, completed, _wall, events = runs[0]
    return mean, completed, walls[len(walls) // 2], events


def t975(df):
    return T975[max(k for k in T975 if k <= df)] if df <= 120 else 1.960


def mean_ci(values):
    """Mean and 95% CI half-width, treating each seed's mean as one sample."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t975(n - 1) * sd / math.sqrt(n)


def summarise(runs):
    means = [r[0] for r in runs]
    completed = sum(r[1] for r in runs)
    wall = sum(r[2] for r in runs)
    events = None if any(r[3] is None for r in runs) else sum(r[3] for r in runs)
    mean, ci = mean_ci(means)
    return {
        "mean": mean,
        "ci": ci,
        "completed": completed,
        "wall": wall,
        "customers_per_s": completed / wall,
        "events_per_s": events / wall if events is not None else None,
        "events_per_customer": events / completed if events is not None else None,
    }


def fmt_rate(x):
    return "n/a" if x is None else f"{x:,.0f}"


def fmt_per(x):
    return "n/a" if x is None else f"{x:.1f}"


def print_table(rows, seeds, cpu, repeat):
    header = [
        "model", "analytic", "faultline mean +- CI", "SimPy mean +- CI", "difference (+- tol)",
        "faultline customers/s", "SimPy customers/s", "ratio",
    ]
    body = []
    for name, analytic, fl, sp in rows:
        diff = fl["mean"] - sp["mean"]
        tol = math.hypot(fl["ci"], sp["ci"])
        body.append([
            name,
            f"{analytic:.3f}",
            f"{fl['mean']:.3f} +- {fl['ci']:.3f}",
            f"{sp['mean']:.3f} +- {sp['ci']:.3f}",
            f"{diff:+.3f} (+- {tol:.3f})",
            fmt_rate(fl["customers_per_s"]),
            fmt_rate(sp["customers_per_s"]),
            f"{fl['customers_per_s'] / sp['customers_per_s']:.1f}x",
        ])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    line = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    where = f"pinned to CPU {cpu}" if cpu is not None else "not pinned"
    print(f"faultline vs SimPy {simpy_version()}: seeds 1..{seeds}, one run at a time, {where}, "
          f"median wall time of {repeat} runs per seed")
    print("mean sojourn in seconds; CI = 95% Student t over the per-seed means; "
          "difference = faultline - SimPy")
    print()
    print(line(header))
    print("-+-".join("-" * w for w in widths))
    for r in body:
        print(line(r))
    print()


def print_verdicts(rows):
    print("agreement test: |faultline mean - SimPy mean| <= sqrt(CI_faultline^2 + CI_SimPy^2)")
    print(f"speed target: faultline customers/s >= {SPEED_TARGET:.0f} x SimPy customers/s")
    ok = True
    for name, _analytic, fl, sp in rows:
        diff = abs(fl["mean"] - sp["mean"])
        tol = math.hypot(fl["ci"], sp["ci"])
        ratio = fl["customers_per_s"] / sp["customers_per_s"]
        agree = diff <= tol
        fast = ratio >= SPEED_TARGET
        ok = ok and agree and fast
        print(f"  {name}: means {'agree' if agree else 'DISAGREE'} "
              f"(|diff| {diff:.3f} {'<=' if agree else '>'} {tol:.3f}); "
              f"speed {ratio:.1f}x {'meets' if fast else 'MISSES'} {SPEED_TARGET:.0f}x")
    # Events are not the same unit in the two engines (SimPy schedules one
    # per yield, faultline one per state change), hence per-customer counts
    # alongside the rates rather than a ratio.
    print("events per wall second (not comparable units; events per customer in brackets):")
    for name, _analytic, fl, sp in rows:
        print(f"  {name}: faultline {fmt_rate(fl['events_per_s'])} ({fmt_per(fl['events_per_customer'])}), "
              f"SimPy {fmt_rate(sp['events_per_s'])} ({fmt_per(sp['events_per_customer'])})")
    return ok


def simpy_version():
    import simpy
    return getattr(simpy, "__version__", "4")


def main():
    parser = argparse.ArgumentParser(description="Benchmark faultline against SimPy (see bench/peers/README.md).")
    parser.add_argument("--seeds", type=int, default=20, help="replications per simulator and model, seeds 1..N (default 20)")
    parser.add_argument("--model", action="append", choices=MODEL_NAMES,
                        help="run only this model (repeatable; default: all)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each seed per simulator; the median wall time counts (default 3)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 if a model's means disagree or the speed target is missed")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 to form a confidence interval")

    ensure_venv_and_reexec()
    # Imported only now: simpy is installed in the venv, not system-wide.
    sys.path.insert(0, HERE)
    import simpy_models

    durations = check_models_match(simpy_models.MODELS)
    build_faultline()
    cpu = pin_to_one_cpu()

    started = time.monotonic()
    rows = []
    for name in args.model or MODEL_NAMES:
        duration, stop = durations[name]
        seeds = range(1, args.seeds + 1)
        # Strictly sequential: all faultline seeds, then all SimPy seeds, so
        # the two never compete for the CPU.
        log(f"{name}: faultline, {args.seeds} seeds of {duration:g} simulated s (arrivals until {stop:g} s)")
        fl = summarise([median_of(args.repeat, lambda: run_faultline(name, s)) for s in seeds])
        log(f"{name}: SimPy, {args.seeds} seeds of {duration:g} simulated s (arrivals until {stop:g} s)")
        sp_runs = []
        for s in seeds:
            sp_runs.append(median_of(args.repeat, lambda: simpy_models.run_model(name, s, duration, stop)))
            log(f"  seed {s}: mean {sp_runs[-1][0]:.3f} s, {sp_runs[-1][2]:.2f} s wall")
        sp = summarise(sp_runs)
        rows.append((name, simpy_models.MODELS[name][2], fl, sp))

    print_table(rows, args.seeds, cpu, args.repeat)
    ok = print_verdicts(rows)
    print(f"total time (including process starts): {time.monotonic() - started:.0f} s")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
