"""The fluid server CPU: FIFO, processor sharing, partitions, slowdowns and energy per cycle."""

import math

import pytest
import simpy

from simulator.network.cpu import SharedCpu
from simulator.network.faults import IntervalSet
from simulator.network.schedule import run_while


class Job:
    def __init__(self, name, cycles, cls=0):
        self.name, self.remaining, self.rx_cycles, self.cpu_class, self.e_srv = name, cycles, cycles, cls, 0.0


def serve(policy, jobs, *, f=1.0, kappa=0.0, n_classes=1, slowdown=(), shares=None, share_change=None):
    """Submit (time, job) pairs; return {name: completion time} and the CPU."""
    env = simpy.Environment()
    done = {}
    cpu = SharedCpu(env, f, kappa, policy, n_classes, IntervalSet(slowdown),
                    lambda j: done.__setitem__(j.name, env.now))
    if shares is not None:
        cpu.set_shares(shares)
    for t, job in jobs:
        env.timeout(t).callbacks.append(lambda _e, job=job: cpu.submit(job))
    if share_change is not None:
        t, new = share_change
        env.timeout(t).callbacks.append(lambda _e: cpu.set_shares(new))
    run_while(env, lambda: env.peek() < 1000)  # the world's loop (the CPU queues calls); peek is inf when empty
    return done, cpu


def test_fifo_serves_in_order_at_full_speed():
    done, cpu = serve("fifo", [(0, Job("a", 2.0)), (0, Job("b", 3.0)), (10, Job("c", 1.0))], f=1.0)
    assert done == {"a": 2.0, "b": 5.0, "c": 11.0}
    assert cpu.busy_s == pytest.approx(6.0) and cpu.n_jobs == 0


def test_processor_sharing_splits_the_speed():
    # Two jobs share: the short one (1 cycle) finishes at 2, the long one (3) at 4.
    done, _ = serve("processor-sharing", [(0, Job("a", 1.0)), (0, Job("b", 3.0))])
    assert done == pytest.approx({"a": 2.0, "b": 4.0})
    # A late arrival slows the job in service: a alone until 1 (1 of 2 cycles), then half speed.
    done, _ = serve("processor-sharing", [(0, Job("a", 2.0)), (1, Job("b", 2.0))])
    assert done == pytest.approx({"a": 3.0, "b": 4.0})


def test_partitions_follow_the_controllers_shares():
    done, _ = serve("partitioned", [(0, Job("a", 1.0, 0)), (0, Job("b", 3.0, 1))], n_classes=2, shares=[0.25, 0.75])
    assert done == pytest.approx({"a": 4.0, "b": 4.0})
    # A share change mid-job: b does 0.75 cycle by t=1, then the rest at 0.25 → 1 + 2.25/0.25 = 10.
    done, _ = serve("partitioned", [(0, Job("b", 3.0, 1))], n_classes=2, shares=[0.25, 0.75],
                    share_change=(1.0, [0.75, 0.25]))
    assert done == pytest.approx({"b": 10.0})
    with pytest.raises(ValueError):
        serve("partitioned", [], n_classes=2, shares=[0.8, 0.8])


def test_slowdown_and_stall_stretch_service():
    # Half speed in [1, 3): 1 cycle by t=1, 1 more by t=3, the last 1 by t=4.
    done, _ = serve("fifo", [(0, Job("a", 3.0))], slowdown=[(1.0, 3.0, 0.5)])
    assert done == pytest.approx({"a": 4.0})
    done, _ = serve("processor-sharing", [(0, Job("a", 2.0)), (0.5, Job("b", 1.0))], slowdown=[(1.0, 5.0, 0.0)])
    # a: 0.5 alone, then 0.25 shared until the stall; after 5 both share: b needs 0.75 → 6.5, a 1.25 → 7
    assert done == pytest.approx({"b": 6.5, "a": 7.0})


def test_energy_per_cycle_is_kappa_f_squared_at_the_clock_that_ran_it():
    kappa, f = 1e-27, 2e9
    done, cpu = serve("fifo", [(0, Job("a", 1e6)), (0, Job("b", 2e6))], f=f, kappa=kappa,
                      slowdown=[(1e-4, 2e-4, 0.3)])
    assert cpu.energy_j == pytest.approx(kappa * f**2 * 3e6, rel=1e-12)  # contention does not lower the clock
    env = simpy.Environment()
    jobs = [Job("a", 1e6, 0), Job("b", 1e6, 1)]
    cpu = SharedCpu(env, f, kappa, "partitioned", 2, IntervalSet(), lambda j: None)
    cpu.set_shares([0.5, 0.25])
    for j in jobs:
        cpu.submit(j)
    run_while(env, lambda: bool(env._queue))
    assert jobs[0].e_srv == pytest.approx(kappa * (0.5 * f) ** 2 * 1e6)
    assert jobs[1].e_srv == pytest.approx(kappa * (0.25 * f) ** 2 * 1e6)
    assert math.isclose(env.now, 1e6 / (0.25 * f))
