"""Launch files: deploy/cluster.yaml through Ray's own config preparation and validation (what `ray up` runs,
against the ray-schema.json Ray ships), deploy/rayjob.yaml's required KubeRay fields, and both against the
project: the README's pins, token authentication on, the sweep command line sweep.run itself accepts."""
import copy
import re
import shlex
from importlib import metadata

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from sweep.run import parse_args
from sweep.space import load_sweep

# repo_root is a conftest fixture


@pytest.fixture(scope="module")
def cluster(repo_root) -> dict:
    return yaml.safe_load((repo_root / "deploy" / "cluster.yaml").read_text())


@pytest.fixture(scope="module")
def pins() -> dict[str, Requirement]:
    """The project's own dependencies (pyproject.toml, as installed), by name."""
    deps = [Requirement(d) for d in metadata.requires("zs-sweep")]
    return {d.name: d for d in deps if d.marker is None}


def ray_up_checks(config: dict) -> dict:
    """What `ray up` does to a config before it touches a cloud: fill in the provider's defaults, then
    validate against ray/autoscaler/ray-schema.json and Ray's own rules."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_cluster_yaml_passes_rays_own_validation(cluster):
    prepared = ray_up_checks(cluster)
    head = prepared["available_node_types"][prepared["head_node_type"]]
    workers = [t for name, t in prepared["available_node_types"].items() if name != prepared["head_node_type"]]
    assert head["resources"]["GPU"] >= 1  # the sweep fits its trials to the nodes alive at start: a GPU there
    assert workers and all(w["resources"]["GPU"] >= 1 and w["min_workers"] < w["max_workers"] for w in workers)


def test_rays_validation_is_not_vacuous(cluster):
    typo = {**cluster, "max_worker": 4}
    with pytest.raises(jsonschema.ValidationError, match="max_worker"):
        ray_up_checks(typo)
    no_head = {**cluster, "head_node_type": "gpu_headd"}
    with pytest.raises(ValueError, match="head_node_type"):
        ray_up_checks(no_head)


def test_cluster_yaml_installs_the_readme_pins_and_keeps_token_auth_on(cluster, pins, repo_root):
    torch_pin = f"torch{pins['torch'].specifier}"
    readme = (repo_root / "README.md").read_text()
    assert torch_pin == "torch==2.13.0" and f"pip install -q {torch_pin} && pip install -q -e" in readme
    assert cluster["setup_commands"][0] == f"pip install -q {torch_pin} && pip install -q -e ~/zs-sweep"
    assert cluster["file_mounts"] == {"~/zs-sweep": ".", "~/.ray/auth_token": "~/.ray/auth_token"}
    image_ray = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py3\d+-gpu", cluster["docker"]["image"]).group(1)
    assert pins["ray"].specifier.contains(image_ray)
    starts = [c for c in cluster["head_start_ray_commands"] + cluster["worker_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token ray start" in c for c in starts)
    assert "--dashboard-host=127.0.0.1" in cluster["head_start_ray_commands"][-1]  # watched through an SSH tunnel
    assert "0.0.0.0" not in yaml.safe_dump(cluster)


@pytest.fixture(scope="module")
def rayjob_docs(repo_root) -> dict[str, dict]:
    docs = list(yaml.safe_load_all((repo_root / "deploy" / "rayjob.yaml").read_text()))
    return {doc["kind"]: doc for doc in docs}


def test_rayjob_yaml_has_the_fields_kuberay_requires(rayjob_docs):
    job = rayjob_docs["RayJob"]
    assert job["apiVersion"] == "ray.io/v1" and job["metadata"]["name"]
    spec = job["spec"]["rayClusterSpec"]
    # KubeRay's token authentication, which needs Ray 2.52 or newer
    assert spec["authOptions"] == {"mode": "token"} and Version(spec["rayVersion"]) >= Version("2.52.0")
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    assert len(groups) >= 2 and all(g["template"]["spec"]["containers"][0]["image"] for g in groups)
    for group in groups:  # every pod has a GPU, the head too (the sweep sees a GPU when it starts)
        assert group["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    for worker in spec["workerGroupSpecs"]:
        assert worker["groupName"] and worker["minReplicas"] < worker["maxReplicas"]


def test_rayjob_runs_the_gamma_sweep_with_its_storage_on_the_shared_volume(rayjob_docs, repo_root, monkeypatch):
    job, claim = rayjob_docs["RayJob"], rayjob_docs["PersistentVolumeClaim"]
    workdir, command = job["spec"]["entrypoint"].split(" && ")
    assert workdir == "cd /home/ray/zs-sweep"
    argv = shlex.split(command)
    assert argv[:4] == ["python", "-m", "sweep.run", "search_spaces/gamma.yaml"]
    args = parse_args(argv[3:])  # sweep.run's own parser and loader accept it
    monkeypatch.chdir(repo_root)
    sweep = load_sweep(args.space, args.overrides)
    assert args.address == "auto" and sweep.name == "gamma"
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    spec = job["spec"]["rayClusterSpec"]
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        pod = group["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]
                  if volumes[m["name"]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]]
        assert mounts == ["/mnt/zs-sweep"]
        assert sweep.tune.storage_path.startswith(mounts[0] + "/") and args.output.startswith(mounts[0] + "/")
