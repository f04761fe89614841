"""Deployments on a Prefect work pool: the scale-out form of :mod:`oncograph_flows.deployments`.

``oncograph schedule serve`` runs every scheduled harvest inside one serving process. In the cloud a work
pool does that job: the deployments are registered once (``oncograph deployments register --work-pool P``),
and any number of workers (``prefect worker start --pool P``) pick up their runs, each run in a process (a
``process`` pool) or a container (a ``kubernetes``, ``docker`` or ``ecs`` pool, with ``--image``) of its own.

What is registered (:data:`POOL_DEPLOYMENTS`): the scheduled harvests with their crons (GDC nightly, IDC and
PDC weekly), and, without a schedule, ``embed``, ``export_cohort`` and ``process_export_queue``, run on demand
(``prefect deployment run embed/embed --param modality=slide ...`` or the API's create_flow_run).

Where a worker finds the code: by default the deployments name their flows by **module path**
(``oncograph_flows.harvest.harvest_gdc_flow``), imported from the ``oncograph`` installed in the worker's
environment or image, so no code is pulled at run time. ``source`` names a checkout on the workers' disk
instead: the entrypoints become file paths in it and a ``set_working_directory`` pull step moves there.

Configuration is the workers' environment, not the deployments': ``ONCOGRAPH_DATABASE_URL``,
``ONCOGRAPH_FEATURES_ROOT``, ``RAY_ADDRESS`` / ``ONCOGRAPH_RAY_ADDRESS``, ``ONCOGRAPH_S3_ENDPOINT_URL`` ...
reach each run from the worker that starts it, so a secret never lands in Prefect's database.

Registering twice updates the deployments in place (same names); a run in flight is not affected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect.flows import Flow

from oncograph.errors import ConfigurationError
from oncograph_flows.deployments import SCHEDULES


def _embed() -> Flow[Any, Any]:
    from oncograph_flows.embed import embed_flow  # imports ray: only when the deployments are built

    return embed_flow


def _export_cohort() -> Flow[Any, Any]:
    from oncograph_flows.export import export_cohort

    return export_cohort


def _export_queue() -> Flow[Any, Any]:
    from oncograph_flows.export import process_export_queue

    return process_export_queue


@dataclass(frozen=True, slots=True)
class PoolDeployment:
    """One deployment on a work pool: a flow, its name, and a cron (UTC) when it runs on a schedule."""

    name: str
    flow: Callable[[], Flow[Any, Any]]
    cron: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    tags: tuple[str, ...] = ("oncograph",)
    concurrency_limit: int | None = None

    def module_entrypoint(self) -> str:
        fn = self.flow().fn
        return f"{fn.__module__}.{fn.__name__}"

    def file_entrypoint(self) -> str:
        """The flow's file in a checkout of this repository (``flows/<package path>.py:function``)."""
        fn = self.flow().fn
        return f"{Path('flows', *fn.__module__.split('.')).with_suffix('.py').as_posix()}:{fn.__name__}"


POOL_DEPLOYMENTS: list[PoolDeployment] = [
    *(
        PoolDeployment(
            name=s.name,
            flow=s.flow,
            cron=s.cron,
            parameters=s.parameters,
            description=s.description,
            tags=("oncograph", "ingest"),
            concurrency_limit=1,
        )
        for s in SCHEDULES
    ),
    PoolDeployment(
        name="embed",
        flow=_embed,
        description="Embed slides, series or clinical text on the Ray cluster of the worker's RAY_ADDRESS "
        "(or ONCOGRAPH_RAY_ADDRESS); feature files go to ONCOGRAPH_FEATURES_ROOT. Run on demand with "
        "modality and paths, cohort_id or gdc_file_ids.",
        tags=("oncograph", "embed"),
    ),
    PoolDeployment(
        name="export-cohort",
        flow=_export_cohort,
        description="Export one cohort version (or run an export queued by the API) to a folder or s3://.",
        tags=("oncograph", "export"),
    ),
    PoolDeployment(
        name="process-export-queue",
        flow=_export_queue,
        description="Claim and run queued exports until none is left (the same pass as `oncograph worker "
        "--once`); safe beside running workers: each export is held under a lease.",
        tags=("oncograph", "export"),
    ),
]


@dataclass(frozen=True, slots=True)
class Registered:
    """A deployment as registered: what ``oncograph deployments register --json`` prints."""

    deployment: str
    """``<flow name>/<deployment name>``, as ``prefect deployment run`` takes it."""
    deployment_id: str
    work_pool: str
    entrypoint: str
    cron: str | None
    image: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "deployment_id": self.deployment_id,
            "work_pool": self.work_pool,
            "entrypoint": self.entrypoint,
            "cron": self.cron,
            "image": self.image,
        }


@dataclass(frozen=True, slots=True)
class PoolInfo:
    name: str
    type: str
    created: bool
    takes_image: bool
    default_image: str | None = None
    """The image the pool's base job template names when a deployment names none (Terraform sets one)."""


def register_on_work_pool(
    work_pool: str,
    *,
    image: str | None = None,
    source: Path | None = None,
    create_pool: bool = False,
    which: list[PoolDeployment] | None = None,
) -> tuple[PoolInfo, list[Registered]]:
    """Register :data:`POOL_DEPLOYMENTS` (or ``which``) on ``work_pool`` of the Prefect server at
    PREFECT_API_URL; returns the pool and what was registered.

    Args:
        image: the image a container pool (kubernetes, docker, ecs) runs each flow run in (default: the
            pool's base job template's, e.g. the worker image Terraform sets); a ``process`` pool takes none.
        source: a checkout of this repository on the workers' disk to run the flows from (default: the
            installed package, by module path).
        create_pool: create a missing pool, of type ``process`` (a container pool is created with
            ``prefect work-pool create --type kubernetes`` or by its first ``prefect worker start --type``).

    Raises:
        ConfigurationError: PREFECT_API_URL unset, the server unreachable, the pool missing (and not
            ``create_pool``), an image for a pool that takes none or none for one that needs it, a
            ``source`` that is not a checkout, or a deployment the server refused.
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    if not api_url:
        raise ConfigurationError(
            "PREFECT_API_URL is not set: deployments are registered with a running Prefect server",
            hint="export PREFECT_API_URL=http://<prefect server>:4200/api (prefect server start, or the "
            "cloud's Prefect service)",
        )
    chosen = POOL_DEPLOYMENTS if which is None else which
    root = _checkout(source) if source is not None else None
    with get_client(sync_client=True) as client:
        _reach(client, api_url)
        pool = _pool(client, work_pool, api_url, create=create_pool)
    _check_image(pool, image)
    registered = []
    for spec in chosen:
        deployment, entrypoint = _runner_deployment(spec, root)
        try:
            deployment_id = deployment.apply(work_pool_name=pool.name, image=image)
        except Exception as exc:  # DeploymentApplyError, HTTP errors: the server's own words
            raise ConfigurationError(
                f"the Prefect server at {api_url} refused deployment {spec.name!r}: {str(exc)[:500]}",
                hint="check the server's version (Prefect 3) and its logs",
            ) from exc
        registered.append(
            Registered(
                deployment=f"{deployment.flow_name}/{spec.name}",
                deployment_id=str(deployment_id),
                work_pool=pool.name,
                entrypoint=entrypoint,
                cron=spec.cron,
                image=image,
            )
        )
    return pool, registered


def _checkout(source: Path) -> Path:
    root = Path(source).expanduser().resolve()
    missing = [
        spec.file_entrypoint().split(":")[0]
        for spec in POOL_DEPLOYMENTS
        if not (root / spec.file_entrypoint().split(":")[0]).is_file()
    ]
    if not root.is_dir() or missing:
        raise ConfigurationError(
            f"{source} is not a checkout of oncograph (missing {', '.join(sorted(set(missing))) or root})",
            hint="--source names the repository folder on the workers' disk; leave it out to run the "
            "installed package",
        )
    return root


def _reach(client: Any, api_url: str) -> None:
    import httpx

    try:
        client.hello()
    except (httpx.HTTPError, OSError) as exc:
        raise ConfigurationError(
            f"cannot reach the Prefect server at PREFECT_API_URL={api_url}: {str(exc)[:300]}",
            hint="start it (prefect server start) or fix PREFECT_API_URL",
        ) from exc


def _pool(client: Any, name: str, api_url: str, *, create: bool) -> PoolInfo:
    from prefect.exceptions import ObjectNotFound

    try:
        pool = client.read_work_pool(name)
    except ObjectNotFound:
        if not create:
            raise ConfigurationError(
                f"the Prefect server at {api_url} has no work pool {name!r}",
                hint=f"create it: `prefect work-pool create {name} --type process` (or --type kubernetes), "
                f"or pass --create-pool to create a process pool; `prefect worker start --pool {name} "
                "--type TYPE` also creates it",
            ) from None
        from prefect.client.schemas.actions import WorkPoolCreate
        from prefect.workers.process import ProcessWorker

        pool = client.create_work_pool(
            WorkPoolCreate(
                name=name,
                type="process",
                base_job_template=ProcessWorker.get_default_base_job_template(),
                description="oncograph flows, one local process per run (created by oncograph)",
            )
        )
        return PoolInfo(pool.name, pool.type, True, False)
    variables = (pool.base_job_template or {}).get("variables", {}).get("properties", {})
    image = variables.get("image")
    default = image.get("default") if isinstance(image, dict) else None
    return PoolInfo(pool.name, pool.type, False, image is not None, str(default) if default else None)


def _check_image(pool: PoolInfo, image: str | None) -> None:
    if image and not pool.takes_image:
        raise ConfigurationError(
            f"work pool {pool.name!r} (type {pool.type}) runs flows in local processes and takes no image",
            hint="drop --image (the workers run the installed oncograph), or use a kubernetes, docker or ecs pool",
        )
    if pool.takes_image and not image and not pool.default_image:
        raise ConfigurationError(
            f"work pool {pool.name!r} (type {pool.type}) runs each flow in a container: name its image",
            hint="--image <registry>/oncograph-worker:<tag> (docker/Dockerfile.worker; Terraform's worker image "
            "output)",
        )


def _runner_deployment(spec: PoolDeployment, root: Path | None) -> tuple[Any, str]:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.types.entrypoint import EntrypointType

    options: dict[str, Any] = {
        "name": spec.name,
        "cron": spec.cron,
        "parameters": spec.parameters,
        "description": spec.description,
        "tags": list(spec.tags),
        "concurrency_limit": spec.concurrency_limit,
    }
    if root is None:
        deployment = spec.flow().to_deployment(**options, entrypoint_type=EntrypointType.MODULE_PATH)
        entrypoint = spec.module_entrypoint()
    else:
        entrypoint = spec.file_entrypoint()
        flow: Any = Flow.from_source(source=str(root), entrypoint=entrypoint)
        deployment = flow.to_deployment(**options)
    assert isinstance(deployment, RunnerDeployment)  # the sync form, outside an event loop
    return deployment, entrypoint
