"""sweep.resources.plan_resources: what one trial gets on fake Ray node tables (as ray.nodes() gives them: floats,
plus memory and node: entries), and the notices printed: whole GPUs, GPU fractions packed on one GPU, CPU-only
and mixed clusters, requests no node can hold."""
from sweep.resources import plan_resources


def node(cpu: float, gpu: float = 0.0, ip: str = "10.0.0.1") -> dict:
    table = {"CPU": float(cpu), "memory": 2.0e11, "object_store_memory": 8.0e10, f"node:{ip}": 1.0}
    return {**table, "GPU": float(gpu)} if gpu else table


TWO_BY_EIGHT = [node(96, 8, "10.0.0.1"), node(96, 8, "10.0.0.2")]  # two nodes, 8 GPUs each
ONE_GPU = [node(8, 1)]
CPU_ONLY = [node(16, ip="10.0.0.1"), node(4, ip="10.0.0.2")]
MIXED = [node(64, ip="10.0.0.1"), node(8, 2, "10.0.0.2")]  # a CPU node and a 2-GPU node


def test_whole_gpus_that_fit_are_kept_without_a_notice():
    assert plan_resources({"gpu": 1}, TWO_BY_EIGHT) == ({"cpu": 1, "gpu": 1}, [])
    assert plan_resources({"gpu": 2, "cpu": 8}, TWO_BY_EIGHT) == ({"cpu": 8, "gpu": 2}, [])
    assert plan_resources({"gpu": 1}, ONE_GPU) == ({"cpu": 1, "gpu": 1}, [])
    assert plan_resources({"gpu": 1, "cpu": 4}, MIXED) == ({"cpu": 4, "gpu": 1}, [])
    assert plan_resources({"cpu": 4}, MIXED) == ({"cpu": 4}, [])  # no GPU asked: any node, no notice


def test_a_gpu_fraction_packs_trials_on_each_gpu_and_says_how_many_run_at_once():
    assert plan_resources({"gpu": 0.25}, TWO_BY_EIGHT) == ({"cpu": 1, "gpu": 0.25}, [
        "notice: 0.25 GPU and 1 CPU per trial: 4 trials share a GPU, 64 trials at once on this cluster's 16 GPUs"])
    assert plan_resources({"gpu": 0.5, "cpu": 4}, ONE_GPU) == ({"cpu": 4, "gpu": 0.5}, [
        "notice: 0.5 GPU and 4 CPU per trial: 2 trials share a GPU, 2 trials at once on this cluster's 1 GPU"])
    assert plan_resources({"gpu": 0.1, "cpu": 0.5}, ONE_GPU)[1] == [
        "notice: 0.1 GPU and 0.5 CPU per trial: 10 trials share a GPU, 10 trials at once on this cluster's 1 GPU"]
    # on a mixed cluster only the GPU node takes GPU trials
    assert plan_resources({"gpu": 0.5}, MIXED) == ({"cpu": 1, "gpu": 0.5}, [
        "notice: 0.5 GPU and 1 CPU per trial: 2 trials share a GPU, 4 trials at once on this cluster's 2 GPUs"])


BOUND = (" (its CPUs bind: the GPUs would hold {}; give each trial fewer CPUs, tune.resources_per_trial.cpu, "
         "to fill them)")


def test_cpus_that_leave_gpus_idle_are_named():
    assert plan_resources({"gpu": 0.25, "cpu": 16}, TWO_BY_EIGHT) == ({"cpu": 16, "gpu": 0.25}, [
        "notice: 0.25 GPU and 16 CPU per trial: 4 trials share a GPU, 12 trials at once on this cluster's 16 GPUs"
        + BOUND.format(64)])
    assert plan_resources({"gpu": 1, "cpu": 5}, MIXED) == ({"cpu": 5, "gpu": 1}, [  # whole GPUs: only when bound
        "notice: 1 GPU and 5 CPU per trial: 1 trial at once on this cluster's 2 GPUs" + BOUND.format(2)])


def test_max_concurrent_below_what_fits_is_named():
    assert plan_resources({"gpu": 0.25}, TWO_BY_EIGHT, max_concurrent=10)[1] == [
        "notice: 0.25 GPU and 1 CPU per trial: 4 trials share a GPU, 64 trials at once on this cluster's 16 GPUs; "
        "tune.max_concurrent 10 runs 10 at once"]
    assert plan_resources({"gpu": 0.25}, ONE_GPU, max_concurrent=8)[1] == [  # above what fits: not named
        "notice: 0.25 GPU and 1 CPU per trial: 4 trials share a GPU, 4 trials at once on this cluster's 1 GPU"]


def test_a_gpu_request_on_a_cpu_cluster_takes_a_whole_node_with_one_notice():
    for gpu in (1, 0.25):
        assert plan_resources({"gpu": gpu}, CPU_ONLY) == ({"cpu": 16.0}, [
            "notice: no GPU in this Ray cluster; trials run on CPU with 16 cores each"])
    assert plan_resources({"gpu": 0.25, "cpu": 0.5}, CPU_ONLY) == ({"cpu": 0.5}, [
        "notice: no GPU in this Ray cluster; trials run on CPU with 0.5 cores each"])
    assert plan_resources({}, [node(2)]) == ({"cpu": 2}, [])  # no GPU asked: a node's CPUs, no notice


def test_a_request_no_node_can_hold_is_shrunk_with_a_notice():
    assert plan_resources({"cpu": 32}, CPU_ONLY) == ({"cpu": 16}, [
        "notice: no node of this Ray cluster holds {'cpu': 32}; each trial gets {'cpu': 16.0} (the most one "
        "node offers)"])
    # 16 GPUs in the cluster, but at most 8 on one node
    assert plan_resources({"gpu": 16}, TWO_BY_EIGHT) == ({"cpu": 1, "gpu": 8}, [
        "notice: no node of this Ray cluster holds {'cpu': 1, 'gpu': 16}; each trial gets {'cpu': 1, 'gpu': 8.0} "
        "(the most one node offers)"])
    # the CPUs of the node that has the GPUs, not of the bigger CPU node; then the CPUs bind the packing
    assert plan_resources({"gpu": 1, "cpu": 16}, MIXED) == ({"cpu": 8, "gpu": 1}, [
        "notice: no node of this Ray cluster holds {'cpu': 16, 'gpu': 1}; each trial gets {'cpu': 8.0, 'gpu': 1} "
        "(the most one node offers)",
        "notice: 1 GPU and 8 CPU per trial: 1 trial at once on this cluster's 2 GPUs" + BOUND.format(2)])
