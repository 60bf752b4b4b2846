"""What one trial asks of a Ray cluster: a GPU where the cluster has them, else the CPUs of a node, never more
than a node offers, with a notice of each change and of how many trials run at once."""
from __future__ import annotations


def fit_resources(want: dict, max_concurrent: int = 0, quiet: bool = False) -> dict:
    """One trial's resources on the running Ray cluster (``plan_resources``), its notices printed (not ``quiet``)."""
    import ray

    fitted, notices = plan_resources(want, [n["Resources"] for n in ray.nodes() if n.get("Alive")], max_concurrent)
    for line in notices if not quiet else ():
        print(line, flush=True)
    return fitted


def plan_resources(want: dict, nodes: list[dict], max_concurrent: int = 0) -> tuple[dict, list[str]]:
    """What one trial asking ``want`` ({"gpu": g, "cpu": c}) gets on nodes with these resource tables, so
    that no trial waits forever (PENDING): GPUs where the cluster has them (else all CPUs of a node, with a
    notice), shrunk to what the largest fitting node offers (with a notice). A GPU fraction packs trials on
    one GPU; how many run at once is noticed then, and wherever the CPUs leave GPUs idle. Pure, for fake
    node tables."""
    gpu = want.get("gpu", 0)
    most_gpu = max((n.get("GPU", 0) for n in nodes), default=0)
    per_node = max((n.get("CPU", 1) for n in nodes), default=1)
    notices = []
    if gpu and not most_gpu:
        gpu = 0
        notices.append(f"notice: no GPU in this Ray cluster; trials run on CPU with "
                       f"{_count(want.get('cpu') or per_node, 'core')} each")
    asked = {"cpu": want.get("cpu") or (1 if gpu else per_node), **({"gpu": gpu} if gpu else {})}
    gpu = min(gpu, most_gpu)
    most_cpu = max((n.get("CPU", 0) for n in nodes if n.get("GPU", 0) >= gpu), default=asked["cpu"])
    fitted = {"cpu": min(asked["cpu"], most_cpu) or 1, **({"gpu": gpu} if gpu else {})}
    if fitted != asked:
        notices.append(f"notice: no node of this Ray cluster holds {asked}; each trial gets {fitted} "
                       f"(the most one node offers)")
    if gpu:
        notices += _packing(fitted, nodes, max_concurrent)
    return fitted, notices


def _packing(fitted: dict, nodes: list[dict], max_concurrent: int) -> list[str]:
    """A notice of how many GPU trials run at once: always for a GPU fraction, else only when CPUs bind."""
    gpu, cpu = fitted["gpu"], fitted["cpu"]
    gpus = [n["GPU"] for n in nodes if n.get("GPU", 0) >= gpu]
    by_gpu = sum(_fits(g, gpu) for g in gpus)
    at_once = sum(min(_fits(n["GPU"], gpu), _fits(n.get("CPU", 0), cpu)) for n in nodes if n.get("GPU", 0) >= gpu)
    if gpu >= 1 and at_once == by_gpu:
        return []
    line = f"notice: {_num(gpu)} GPU and {_num(cpu)} CPU per trial: "
    line += f"{_fits(1, gpu)} trials share a GPU, " if gpu < 1 else ""
    line += f"{_count(at_once, 'trial')} at once on this cluster's {_count(sum(gpus), 'GPU')}"
    if at_once < by_gpu:
        line += (f" (its CPUs bind: the GPUs would hold {by_gpu}; give each trial fewer CPUs, "
                 f"tune.resources_per_trial.cpu, to fill them)")
    if 0 < max_concurrent < at_once:
        line += f"; tune.max_concurrent {max_concurrent} runs {max_concurrent} at once"
    return [line]


def _fits(have: float, need: float) -> int:
    """How many asks of ``need`` fit in ``have`` (Ray counts resources in steps of 1e-4)."""
    return int(have / need + 1e-6) if need else 0


def _num(x: float) -> str:
    return f"{x:g}"


def _count(n: float, noun: str) -> str:
    return f"{_num(n)} {noun}{'' if n == 1 else 's'}"
