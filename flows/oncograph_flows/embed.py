"""Embedding on Ray, and the Prefect flow ``embed`` over it (the only code that imports ray).

:class:`RayExecutor` overlaps reading with encoding: a reader task per object (a streaming generator; CPU,
fractional, spread over the nodes) yields the object's header and then its tile or slice batches into Ray's
object store; encoder actors (``num_gpus=1`` each when the cluster has GPUs, else CPU actors whose torch uses
the node's cores) take the batches as they come, at most ``2 × actors`` batches in flight, so memory stays
bounded however large a slide is. Batches go from the reader to an actor by reference: the driver never copies
pixels. Text is batched across patients and sent straight to the actors.

``RAY_ADDRESS`` (or ``ONCOGRAPH_RAY_ADDRESS``) names an existing cluster; unset, a local Ray starts for the
run and stops after it. Each result records the node that read it and the nodes whose actors encoded it.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import ray
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from oncograph.access import Scope
from oncograph.access.principals import ensure_local_principal
from oncograph.db import get_engine, session_factory
from oncograph.embeddings.compute import Encoding, Header, Result, failure_reason, read_job, text_chunks
from oncograph.embeddings.encoders import EncoderSpec
from oncograph.embeddings.jobs import EmbedRequest, Job
from oncograph.embeddings.runner import EmbedSummary, embed
from oncograph.errors import ConfigurationError
from oncograph.settings import Settings, get_settings


@ray.remote
def _read(job: Job, spec: EncoderSpec, request: EmbedRequest) -> Iterator[Any]:
    """Yield the job's header (with the node that read it), then its batches; a failure as a string."""
    node = ray.get_runtime_context().get_node_id()
    try:
        reader = read_job(job, spec, request)
        header = next(reader)
        assert isinstance(header, Header)
        yield replace(header, details={**header.details, "read_on": node})
        yield from reader
    except Exception as exc:
        yield failure_reason(exc)


@ray.remote
class EncoderActor:
    """One loaded encoder on one GPU (or a node's CPU cores)."""

    def __init__(self, spec: EncoderSpec, device: str | None, threads: int | None) -> None:
        if threads is None and device != "cuda":
            threads = len(os.sched_getaffinity(0))
        if threads is not None:
            # Ray sets OMP_NUM_THREADS to the actor's (fractional, rounded down) CPUs; torch would use one
            # thread, halving a CPU encoder: the node's cores are what the encoder-alone figure gets
            import torch

            torch.set_num_threads(threads)
        self.encoding = Encoding(spec, device, threads)
        self.node = ray.get_runtime_context().get_node_id()

    def node_id(self) -> str:
        return self.node

    def images(self, batch: Any) -> Any:
        if isinstance(batch, str):  # the reader failed after its header: pass its reason on
            return batch
        return self.encoding.images(batch)

    def texts(self, texts: list[str]) -> Any:
        return self.encoding.texts(texts)


def _reachable(address: str) -> None:
    """Fail at once, with what to do, when nothing listens at a ``host:port`` or ``ray://host:port`` address
    (Ray itself retries for minutes)."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot reach the Ray cluster at {address}: {exc}",
            hint="check RAY_ADDRESS / ONCOGRAPH_RAY_ADDRESS, or unset it to run on a local Ray",
        ) from exc


def _connect(settings: Settings) -> bool:
    """Join the configured cluster or start a local Ray; True when this call started it."""
    if ray.is_initialized():
        return False
    address = settings.ray_address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address is None:
        kwargs["num_cpus"] = len(os.sched_getaffinity(0))
    if address is not None:
        _reachable(address)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot reach the Ray cluster at {address}: {str(exc).splitlines()[0][:300]}",
            hint="check RAY_ADDRESS / ONCOGRAPH_RAY_ADDRESS (unset it to run on a local Ray), and RAY_AUTH_TOKEN "
            "when the cluster uses token authentication",
        ) from exc
    return True


class RayExecutor:
    """Runs jobs on a Ray cluster with encoder actors and streaming reader tasks."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = False
        self.actors: list[Any] = []
        self.actor_nodes: list[str] = []
        self.actor_version: str | None = None
        """The encoder version the actors hold (a run of another encoder replaces them)."""

    def __enter__(self) -> RayExecutor:
        self.started = _connect(self.settings)
        return self

    def __exit__(self, *exc: object) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self.started:
            ray.shutdown()

    def _start_actors(self, spec: EncoderSpec) -> None:
        if self.actors and self.actor_version == spec.version:
            return
        for old in self.actors:
            ray.kill(old)
        self.actor_version = spec.version
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
        gpus = int(resources.get("GPU", 0))
        nodes = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
        count = self.settings.embed_actors or (gpus if gpus else max(1, len(nodes)))
        options: dict[str, Any] = {"scheduling_strategy": "SPREAD"}
        if gpus:
            options |= {"num_gpus": 1, "num_cpus": 1}
            device: str | None = "cuda"
        else:
            # leave each node room for a reader task beside its actors, so reading overlaps encoding
            smallest = min(float(n["Resources"].get("CPU", 1)) for n in nodes) if nodes else 1.0
            per_node = -(-count // max(1, len(nodes)))
            share = (smallest - self.settings.embed_reader_cpus) / per_node
            options |= {"num_cpus": max(0.1, round(share, 2))}
            device = "cpu"
        actor: Any = EncoderActor
        self.actors = [
            actor.options(**options).remote(spec, device, self.settings.embed_threads) for _ in range(count)
        ]
        self.actor_nodes = ray.get([a.node_id.remote() for a in self.actors])

    def run(self, jobs: Sequence[Job], spec: EncoderSpec, request: EmbedRequest) -> Iterator[Result]:
        if not jobs:
            return
        self._start_actors(spec)
        if request.modality == "text":
            yield from self._texts(jobs, request)
            return
        yield from self._objects(jobs, spec, request)

    def _texts(self, jobs: Sequence[Job], request: EmbedRequest) -> Iterator[Result]:
        chunks = list(text_chunks(jobs, request.batch_size))
        refs = [
            self.actors[i % len(self.actors)].texts.remote([j.text or "" for j in chunk])
            for i, chunk in enumerate(chunks)
        ]
        for i, (chunk, ref) in enumerate(zip(chunks, refs, strict=True)):
            node = self.actor_nodes[i % len(self.actors)]
            try:
                vectors = ray.get(ref)
            except Exception as exc:
                for job in chunk:
                    yield Result(job, error=failure_reason(exc))
                continue
            for job, vector in zip(chunk, vectors, strict=True):
                yield Result(job, Header(None, {"encoded_on": [node]}, 1), vector[None, :])

    def _objects(self, jobs: Sequence[Job], spec: EncoderSpec, request: EmbedRequest) -> Iterator[Result]:
        inflight = threading.BoundedSemaphore(2 * len(self.actors) + 1)
        pending: queue.Queue[Job | None] = queue.Queue()
        results: queue.Queue[Result] = queue.Queue()
        turn = iter(range(1 << 62))
        turn_lock = threading.Lock()
        for job in jobs:
            pending.put(job)
        readers = min(self.settings.embed_readers, len(jobs))
        for _ in range(readers):
            pending.put(None)

        def next_actor() -> int:
            with turn_lock:
                return next(turn) % len(self.actors)

        def one(job: Job) -> Result:
            generator: Any = _read.options(
                num_returns="streaming",
                num_cpus=self.settings.embed_reader_cpus,
                scheduling_strategy="SPREAD",
            ).remote(job, spec, request)
            first = ray.get(next(generator))
            if isinstance(first, str):
                return Result(job, error=first)
            header: Header = first
            parts: list[Any] = []
            nodes: list[str] = []
            for ref in generator:
                inflight.acquire()
                index = next_actor()
                out = self.actors[index].images.remote(ref)
                out.future().add_done_callback(lambda _f: inflight.release())
                parts.append(out)
                nodes.append(self.actor_nodes[index])
            arrays = ray.get(parts)
            failed = [a for a in arrays if isinstance(a, str)]
            if failed:
                return Result(job, error=failed[0])
            features = np.concatenate(arrays) if arrays else None
            details = {**header.details, "encoded_on": sorted(set(nodes))}
            return Result(job, replace(header, details=details), features)

        def worker() -> None:
            while (job := pending.get()) is not None:
                try:
                    results.put(one(job))
                except Exception as exc:
                    results.put(Result(job, error=failure_reason(exc)))

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(readers)]
        for t in threads:
            t.start()
        for _ in range(len(jobs)):
            yield results.get()
        for t in threads:
            t.join()


def run_embedding(
    request: EmbedRequest,
    *,
    settings: Settings | None = None,
    factory: Any = None,
    executor: Any = None,
    prefect_flow_run_id: str | None = None,
    on_progress: Any = None,
) -> EmbedSummary:
    """One embedding run as the local operator (the CLI and the flow): on Ray unless ``executor`` is given
    (e.g. :class:`oncograph.embeddings.compute.SerialExecutor`)."""
    settings = settings or get_settings()
    factory = factory or session_factory(get_engine())
    with factory() as session, session.begin():
        who = ensure_local_principal(session)
        scope = Scope.everything(who.name)
    if executor is not None:
        return embed(
            factory,
            request,
            settings,
            executor,
            scope=scope,
            prefect_flow_run_id=prefect_flow_run_id,
            on_progress=on_progress,
        )
    with RayExecutor(settings) as ray_executor:
        return embed(
            factory,
            request,
            settings,
            ray_executor,
            scope=scope,
            prefect_flow_run_id=prefect_flow_run_id,
            on_progress=on_progress,
        )


@flow(name="embed", validate_parameters=True)
def embed_flow(
    modality: str,
    paths: list[str] | None = None,
    cohort_id: int | None = None,
    gdc_file_ids: list[str] | None = None,
    encoder: str | None = None,
    mpp: float | None = None,
    min_tissue: float = 0.25,
    window: str | None = None,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Embed ``modality`` (slide, scan, text) objects named by ``paths``, ``cohort_id`` or ``gdc_file_ids``
    with ``encoder`` (default: the modality's default encoder) on Ray; returns the run's summary."""
    settings = get_settings()
    request = EmbedRequest(
        modality=modality,
        encoder=encoder,
        paths=tuple(paths or ()),
        cohort_id=cohort_id,
        gdc_file_ids=tuple(gdc_file_ids or ()),
        mpp=mpp,
        min_tissue=min_tissue,
        window=window,
        batch_size=batch_size or settings.embed_batch_size,
    )
    summary = run_embedding(
        request, settings=settings, prefect_flow_run_id=str(flow_run.get_id() or "") or None
    )
    get_run_logger().info(
        "embed run %s: %s embedded, %s skipped, %s failed",
        summary.run_id,
        summary.embedded,
        summary.skipped,
        summary.failed,
    )
    return summary.to_json()
