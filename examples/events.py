"""Events: a batch of bouncing balls and a Hénon–Heiles Poincaré section, with physnode.solve.

1. Balls dropped from 1, 2 and 4 m bounce with restitution 0.8. A terminal event (height
   falling through 0) stops each ball at its own impact while the others fly on; the loop
   restarts only the stopped balls, velocity reversed and scaled by 0.8, until each has
   reached the end time or come to rest. A second terminal event, in time, ends each ball's
   flight at the end time; it gets every ball's own clock through `args`.
2. Orbits of the Hénon–Heiles system at energy 1/8 cross the plane x = 0 with px > 0: a
   recording event (x rising through 0) collects every crossing of every orbit in one batched
   solve, and the points (y, py) form the Poincaré section. `Solution.interpolate` draws the
   orbit between the steps.

    python examples/events.py [--quick] [--out DIR]
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import physnode as pn  # noqa: E402

G = 9.81
RESTITUTION = 0.8


def falling(t, y, clock):
    """Free fall, y = (height, velocity); `clock` (each ball's time at the segment's start)
    is only used by the time event, but f receives the args as well."""
    return torch.cat([y[..., 1:], torch.full_like(y[..., :1], -G)], -1)


def bouncing_balls(heights, t_final, max_bounces):
    """Impact times per ball and the sampled heights (t, height) of every flight."""
    n = heights.shape[0]
    state = torch.stack([heights, torch.zeros_like(heights)], -1)
    clock = torch.zeros(n, dtype=heights.dtype)
    flying = torch.ones(n, dtype=torch.bool)
    impacts = [[] for _ in range(n)]
    curves = [[] for _ in range(n)]
    ground = pn.Event(fn=lambda t, y, clock: y[..., 0], terminal=True, direction=-1)
    # the end time, in every ball's own clock: t counts from the start of its flight
    end = pn.Event(fn=lambda t, y, clock: t[..., 0] + clock[..., 0] - t_final, terminal=True,
                   direction=1)
    while bool(flying.any()):
        rows = flying.nonzero().reshape(-1)
        horizon = t_final - float(clock[rows].min())
        t = torch.linspace(0.0, horizon, 200, dtype=heights.dtype)
        sol = pn.solve(falling, state[rows], t, method="dopri5", rtol=1e-10, atol=1e-12,
                       args=clock[rows, None], events=[ground, end])
        for j, i in enumerate(rows.tolist()):
            shown = t <= sol.t_end[j]             # later outputs hold the state at the stop
            curves[i].append((clock[i] + t[shown], sol.ys[shown, j, 0]))
            landed = int(sol.stop_event[j]) == 0
            clock[i] += sol.t_end[j]
            if not landed:                          # reached t_final in the air
                flying[i] = False
                continue
            impacts[i].append(float(clock[i]))
            speed = -RESTITUTION * float(sol.ys[-1, j, 1])
            state[i] = torch.tensor([0.0, speed], dtype=heights.dtype)
            if speed < 1e-2 or len(impacts[i]) >= max_bounces:
                flying[i] = False                   # at rest on the ground
    return impacts, curves


def poincare_section(energy, n_orbits, t_end):
    """Orbits of energy `energy` started on the section; their crossings of x = 0, px > 0."""
    hh = pn.systems.HenonHeiles()
    y = torch.linspace(-0.25, 0.35, n_orbits, dtype=torch.float64)
    py = torch.zeros_like(y)
    px = torch.sqrt(2 * (energy - (y ** 2 / 2 - y ** 3 / 3)) - py ** 2)
    y0 = torch.stack([torch.zeros_like(y), y, px, py], -1)
    section = pn.Event(fn=lambda t, s: s[..., 0], direction=1)      # x rising through 0
    with torch.no_grad():
        sol = pn.solve(hh, y0, [0.0, t_end], method="dopri5", rtol=1e-9, atol=1e-12,
                       events=section, dense=True)
    return hh, sol


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer orbits, shorter (CI)")
    parser.add_argument("--out", default="out/events", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. Bouncing balls: every impact is a terminal event of that ball only.
    heights = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    start = time.perf_counter()
    impacts, curves = bouncing_balls(heights, t_final=4.0 if args.quick else 8.0,
                                     max_bounces=8 if args.quick else 40)
    elapsed = time.perf_counter() - start
    print(f"bouncing balls (restitution {RESTITUTION}) in {elapsed:.2f}s")
    for h0, times in zip(heights.tolist(), impacts):
        # impact k at sqrt(2 h0/g) (1 + 2 Σ_{j=1}^{k-1} e^j)
        first = (2 * h0 / G) ** 0.5
        exact = [first * (1 + 2 * sum(RESTITUTION ** j for j in range(1, k + 1)))
                 for k in range(len(times))]
        error = max(abs(a - b) for a, b in zip(times, exact))
        print(f"  from {h0:g} m: {len(times)} impacts, first at {times[0]:.6f} s, largest "
              f"error against the closed form {error:.1e} s")

    # 2. Hénon–Heiles Poincaré section at energy 1/8.
    energy = 0.125
    start = time.perf_counter()
    hh, sol = poincare_section(energy, n_orbits=6 if args.quick else 24,
                               t_end=100.0 if args.quick else 2000.0)
    elapsed = time.perf_counter() - start
    points = sol.events[0]
    drift = float((hh.energy(points.y) - energy).abs().max())
    print(f"Hénon–Heiles: {points.t.shape[0]} section points of {sol.ys.shape[1]} orbits in "
          f"{elapsed:.2f}s; largest |H − 1/8| on the section {drift:.1e}, largest |x| "
          f"{float(points.y[:, 0].abs().max()):.1e}")

    fig, (ax_ball, ax_orbit, ax_section) = plt.subplots(1, 3, figsize=(15, 4.5))
    for h0, pieces in zip(heights.tolist(), curves):
        color = None
        for t, h in pieces:
            line, = ax_ball.plot(t, h, color=color, lw=1,
                                 label=f"from {h0:g} m" if color is None else None)
            color = line.get_color()
    ax_ball.set_xlabel("t (s)")
    ax_ball.set_ylabel("height (m)")
    ax_ball.set_title(f"bouncing balls, restitution {RESTITUTION}")
    ax_ball.legend()
    # One orbit between the steps, from the dense output.
    t_fine = torch.linspace(0.0, 30.0, 3000, dtype=torch.float64)
    orbit = sol.interpolate(t_fine)[:, 0]
    ax_orbit.plot(orbit[:, 0], orbit[:, 1], lw=0.6)
    ax_orbit.axvline(0.0, color="k", lw=0.5)
    ax_orbit.set_xlabel("x")
    ax_orbit.set_ylabel("y")
    ax_orbit.set_title("one orbit (sol.interpolate), t ≤ 30")
    ax_section.scatter(points.y[:, 1], points.y[:, 3], c=points.sample, s=2, cmap="viridis")
    ax_section.set_xlabel("y")
    ax_section.set_ylabel("py")
    ax_section.set_title("Poincaré section x = 0, px > 0, H = 1/8")
    fig.tight_layout()
    path = out / "events.png"
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
