"""`make best`'s plan, made without training: a recipe and a machine's facts in, members, precision,
threads, processes, minutes and FLOPs out."""

import pytest

from common.errors import ConfigError
from competition.config import COMPETITION_TRAIN_ROWS, RECIPES
from competition.training import planning
from competition.training.hardware import Hardware, Setup

TWO_CORES = Setup(Hardware("AMD EPYC", frozenset({"avx2"}), 2, 2), "float32", "auto: no bfloat16", 2)
ENSEMBLE = RECIPES["best-ensemble-v1"]  # three members: a residual net, then two seeds of one strong preset


def plan_of(recipe=ENSEMBLE, trained=(), setup=TWO_CORES, precision="float32", rate=1_000.0, overhead=0.5,
            **options):
    everyone = planning.members(recipe, "data", "models")
    rates = {m.preset: rate for m in everyone}
    return planning.make_plan(recipe, everyone, set(trained), rates, {p: overhead for p in rates}, setup, precision,
                              COMPETITION_TRAIN_ROWS, **options)


def test_each_member_is_planned_at_its_measured_rate_and_its_epochs():
    plan = plan_of()
    members = [p.member for p in plan.members]
    assert [m.name for m in members] == ["member-1", "member-2", "member-3"] and plan.of == 3
    for planned in plan.members:  # every row (val_size 0), each epoch, at 1,000 images/s
        assert planned.minutes == pytest.approx(planned.member.cfg.epochs * 42_000 / 1_000 / 60)
        assert planned.overhead == 0.5
    assert plan.minutes == pytest.approx(sum(m.cfg.epochs for m in members) * 42 / 60)
    assert plan.flops == pytest.approx(planning.recipe_flops(ENSEMBLE))
    assert all(m.cfg.precision == "float32" for m in members)  # decided once, handed to every member


def test_on_two_cores_two_members_train_at_once_with_one_thread_each():
    plan = plan_of()
    assert plan.workers == 2 and plan.threads == 1
    assert "2 at a time in float32, each with 1 thread" in plan.lines()[-1]
    assert plan_of(jobs=1).workers == 1 and plan_of(jobs=1).threads == 2
    assert "one at a time in float32" in plan_of(jobs=1).lines()[-1]


def test_side_by_side_the_plan_ends_when_its_last_member_does_at_its_share_of_the_cores():
    assert planning.makespan([10.0, 30.0, 5.0], 2) == 30.0  # the third starts where the first ended
    assert planning.makespan([10.0, 30.0, 25.0], 2) == 35.0
    assert planning.makespan([10.0, 30.0], 1) == 40.0 and planning.makespan([], 2) == 0.0
    plan = plan_of(trained={"member-1"})  # two equal members left, each at 1 thread of the 2 calibrated
    assert plan.wall_minutes() == pytest.approx(2 * plan.members[1].minutes)
    assert f"about {planning.format_minutes(plan.wall_minutes())} until the last ends" in plan.lines()[-1]
    assert plan_of(jobs=1).wall_minutes() == pytest.approx(plan_of(jobs=1).minutes)


def test_members_trained_already_cost_nothing_and_are_said_so():
    plan = plan_of(trained={"member-1", "member-2"})
    assert [p.trained for p in plan.members] == [True, True, False]
    assert [m.name for m in plan.to_train] == ["member-3"] and plan.workers == 1  # one left: one process
    assert plan.lines()[0].endswith("trained already") and plan.lines()[2].endswith(
        f"about {planning.format_minutes(plan.members[2].minutes)}")


def test_a_budget_keeps_the_members_that_fit_in_order_and_says_so():
    first = plan_of().members[0]
    plan = plan_of(budget_minutes=first.minutes + first.overhead + 0.01)
    assert [p.member.name for p in plan.members] == ["member-1"] and plan.of == 3
    assert "fits 1 of the recipe's 3 models" in plan.lines()[-1]
    with pytest.raises(ConfigError, match="first model needs about .* over --budget_minutes 1"):
        plan_of(budget_minutes=1)


def test_a_budget_is_weighed_against_the_plan_as_it_runs_side_by_side():
    each = plan_of().members[0].minutes  # three members of 35 min each at all cores; 70 at one core of two
    assert each == pytest.approx(35.0) and plan_of().needed_minutes() == pytest.approx(2 * 2 * each + 3 * 0.5)
    # 120 min: three one after another would fit (106.5 min), but side by side at one thread each the
    # third starts at 70 and ends at 140; two side by side end at 70.
    plan = plan_of(budget_minutes=120)
    assert len(plan.members) == 2 and plan.needed_minutes() == pytest.approx(2 * each + 2 * 0.5)
    assert "fits 2 of the recipe's 3 models" in plan.lines()[-1]
    assert len(plan_of(budget_minutes=120, jobs=1).members) == 3  # one at a time: the sum, 106.5
    assert len(plan_of(trained={"member-1", "member-2"}, budget_minutes=36).members) == 3  # reused: free


def test_on_gpus_one_member_a_gpu_and_on_a_cluster_the_nodes_share_them():
    gpus = Setup(TWO_CORES.machine, "mixed_float16", "auto: T4", 2, gpus=(0, 1))
    plan = plan_of(setup=gpus, precision="mixed_float16")
    assert plan.workers == 2 and "2 at a time, one per GPU (GPUs 0, 1, one process each)" in plan.lines()[-1]
    clustered = plan_of(precision="auto", cluster="HEAD:6379")  # each node resolves "auto" for itself
    assert all(p.member.cfg.precision == "auto" for p in clustered.members)
    assert "shared among the cluster's nodes at HEAD:6379" in clustered.lines()[-1]


def test_a_trial_with_fewer_epochs_plans_fewer_minutes():
    everyone = planning.members(RECIPES["fast"], "data", "models", epochs=1)
    plan = planning.make_plan(RECIPES["fast"], everyone, set(), {"strong-fast": 700.0}, {"strong-fast": 0.0},
                              TWO_CORES, "float32", 1_000)
    assert plan.members[0].minutes == pytest.approx(1_000 / 700 / 60) and plan.workers == 1
    # best-ensemble's members end on a plain epoch; a 1-epoch trial keeps its one epoch warped
    assert {m.cfg.plain_epochs for m in planning.members(RECIPES["best-ensemble"], "data", "models")} == {1}
    for epochs, plain in ((1, 0), (2, 1)):
        trial = planning.members(RECIPES["best-ensemble"], "data", "models", epochs=epochs)
        assert [(m.cfg.epochs, m.cfg.plain_epochs) for m in trial] == [(epochs, plain)] * 2


def test_on_a_cluster_the_plan_gives_the_minutes_at_a_nodes_measured_speed():
    node = planning.NodeSpeed("node-b (10.0.0.2)", "mixed_bfloat16",
                              {"resnet-long-ema": 500.0, "strong-long-ema": 2_000.0}, slots=2)
    plan = plan_of(precision="auto", cluster="HEAD:6379", node=node)
    each = [m.member.cfg.epochs * COMPETITION_TRAIN_ROWS / node.rates[m.member.preset] / 60 for m in plan.members]
    assert plan.node_minutes() == pytest.approx(each)
    assert plan.threads == 0, "a node shares its own CPUs among its members, not this machine's"
    # Two at a time, each on the first slot free: the resnet on one, both strong seeds one after the other on the other.
    assert each[0] > each[1] + each[2]
    line = plan.lines()[-1]
    assert "on the cluster at HEAD:6379: about" in line and "measured on node-b (10.0.0.2) (mixed_bfloat16)" in line
    assert f"2 at a time: about {planning.format_minutes(each[0])} of training" in line
    trained = plan_of(trained=["member-1"], precision="auto", cluster="HEAD:6379", node=node)
    assert trained.node_minutes() == pytest.approx(each[1:])
    assert f"2 at a time: about {planning.format_minutes(each[1])} of training" in trained.lines()[-1]
