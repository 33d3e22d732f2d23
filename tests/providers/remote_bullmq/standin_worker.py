"""A remote worker process on a stand-in GPU that serves every kind of job, for tests
that drive the CLI end to end: ``python -m tests.providers.remote_bullmq.standin_worker
--redis URL --queue Q --data-dir DIR --name NAME``. Each input image it reads (from
its own input store, as the local provider would) is logged, one JSON line per job,
to ``DIR/inputs-read.jsonl``: ``{"kind": ..., "inputs": {sha256: sha256 of the bytes}}``."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
from pathlib import Path

from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import GenerationRequest, RequestKind
from desktop_app.providers.base import CancelToken, Capabilities, ProgressCallback, SizeRule
from desktop_app.providers.remote_bullmq.config import WorkerConfig
from desktop_app.providers.remote_bullmq.worker import RemoteWorker
from desktop_app.store.input_images import InputImages
from tests.providers.remote_bullmq.support import StandInGPU


class EveryKindGPU(StandInGPU):
    def __init__(self, store: InputImages, log: Path) -> None:
        super().__init__()
        self.store = store
        self.log = log

    def capabilities(self) -> Capabilities:
        return Capabilities(sizes=SizeRule(multiple_of=1, min_side=64, max_side=1024),
                            supports_seed=True, supports_negative_prompt=True,
                            supports_steps=True, supports_guidance=True,
                            kinds=frozenset(RequestKind))

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        read = {ref.sha256: hashlib.sha256(self.store.read(ref)).hexdigest()
                for ref in request.input_images}
        with self.log.open("a") as fh:
            fh.write(json.dumps({"kind": request.kind.value, "inputs": read}) + "\n")
        images = await super().generate(request, progress, cancel)
        return [GeneratedImage(i.data, i.format, i.width, i.height, i.provider, i.model, i.seed,
                               details={"steps": str(request.steps),
                                        "guidance": f"{request.guidance:g}",
                                        "scheduler_class": "EulerDiscreteScheduler"})
                for i in images]


async def serve(args: argparse.Namespace) -> int:
    store = InputImages.in_profile(args.data_dir)
    gpu = EveryKindGPU(store, args.data_dir / "inputs-read.jsonl")
    worker = RemoteWorker(args.redis, args.queue, local=gpu,
                          password=os.environ.get("IMAGEDESK_REMOTE_PASSWORD"),
                          config=WorkerConfig(name=args.name, heartbeat_s=0.3, warm_up=False),
                          inputs=store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await worker.serve(stop)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--queue", default="imagedesk")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--name", default="stand-in")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(serve(args))


if __name__ == "__main__":
    raise SystemExit(main())
