"""The store under load: submitting 10,000 jobs one by one, start-up recovery
with 10,000 queued jobs, full-text search over 100,000 gallery records, and
thumbnail throughput. Real SQLite files (WAL, synchronous=FULL) in a temp folder.

Run: .venv/bin/python bench/bench_store.py
"""

from __future__ import annotations

import io
import random
import statistics
import tempfile
import time
from pathlib import Path

from _harness import median, percentile, record
from PIL import Image

from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.store.database import open_database
from desktop_app.store.files import make_thumbnail
from desktop_app.store.gallery import Gallery, NewImage
from desktop_app.store.jobs import JobQueue

JOBS = 10_000
RUNNING_AT_CRASH = 8
IMAGES = 100_000
QUERIES = 300
THUMBS = 40

WORDS = (  # noqa: SIM905 - a word list reads better as prose
    "a an the of in on at with by lighthouse dusk dawn night fox cat dog owl castle hill "
    "mountain river lake forest city street neon rain snow fog sunset sunrise portrait "
    "landscape oil painting watercolor photo cinematic lighting dramatic soft golden hour "
    "blue red green purple orange black white silver gold ancient futuristic cyberpunk "
    "steampunk medieval robot dragon knight wizard princess astronaut spaceship planet galaxy "
    "stars moon ocean wave beach island desert cactus flower garden tree leaf autumn winter "
    "spring summer detailed intricate highly sharp focus bokeh depth field wide angle macro "
    "close up studio ghibli van gogh monet hokusai baroque gothic minimal abstract surreal "
    "cozy cafe library kitchen bedroom window door bridge tower temple shrine market festival "
    "lantern candle fire smoke storm lightning thunder cloud sky bird butterfly whale horse "
    "wolf bear tiger lion elephant 8k 4k hdr octane render unreal engine trending artstation "
    "東京 夜景 ネオン 雨 桜 富士山 Café façade über naïve"
).split()


def make_prompt(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 24)))


def bench_submit(folder: Path) -> list[str]:
    queue = JobQueue(open_database(folder / "submit.sqlite"))
    rng = random.Random(1)
    requests = [GenerationRequest(prompt=make_prompt(rng), seed=i) for i in range(JOBS)]
    samples = []
    for request in requests:
        start = time.perf_counter()
        queue.add(request)
        samples.append((time.perf_counter() - start) * 1000)
    batch = [GenerationRequest(prompt=make_prompt(rng)) for _ in range(1000)]
    start = time.perf_counter()
    queue.add_many(batch)
    many_ms = (time.perf_counter() - start) * 1000
    queue.conn.close()
    return [
        f"submit {JOBS:,} jobs one by one (`JobQueue.add`, one durable transaction each): "
        f"median {median(samples):.3f} ms, p95 {percentile(samples, 95):.3f} ms, "
        f"mean {statistics.fmean(samples):.3f} ms, max {max(samples):.1f} ms per job "
        "(target < 2 ms)",
        f"`add_many` of 1,000 jobs in one transaction: {many_ms:.1f} ms "
        f"({many_ms / 1000:.3f} ms per job)",
    ]


def bench_recovery(folder: Path) -> list[str]:
    path = folder / "recovery.sqlite"
    queue = JobQueue(open_database(path))
    rng = random.Random(2)
    queue.add_many([GenerationRequest(prompt=make_prompt(rng), seed=i) for i in range(JOBS)])
    for _ in range(RUNNING_AT_CRASH):
        job = queue.next_runnable()
        assert job is not None
        queue.start(job.id)
    queue.conn.close()  # "crash": the running jobs stay running
    samples = []
    for _round in range(5):
        start = time.perf_counter()
        restarted = JobQueue(open_database(path))
        recovered = restarted.recover_interrupted()
        first = restarted.next_runnable()
        samples.append((time.perf_counter() - start) * 1000)
        assert first is not None
        assert len(recovered) == RUNNING_AT_CRASH
        counts = restarted.counts()
        # put the same jobs back to running for the next round
        for job in restarted.jobs({JobState.QUEUED}, limit=RUNNING_AT_CRASH):
            restarted.start(job.id)
        restarted.conn.close()
    assert counts[JobState.QUEUED] == JOBS
    return [
        f"recovery with {JOBS:,} queued jobs ({RUNNING_AT_CRASH} left running by a crash): "
        f"open + migrate check + recover_interrupted + next_runnable: first {samples[0]:.1f} ms, "
        f"median of 5 {median(samples):.1f} ms (target < 1 s)",
    ]


def bench_search(folder: Path) -> list[str]:
    gallery = Gallery(open_database(folder / "gallery.sqlite"))
    rng = random.Random(3)
    now = time.time()
    providers = ["local", "openai"]
    start = time.perf_counter()
    for chunk in range(0, IMAGES, 5000):
        gallery.add_many([
            NewImage(path=folder / f"img{i:06d}.png", prompt=make_prompt(rng),
                     negative_prompt=rng.choice(["", "blurry lowres", "watermark text"]),
                     width=512, height=512, seed=i, steps=20, guidance=7.0,
                     provider=providers[i % 2], model="builtin:tiny",
                     created_at=now - (IMAGES - i) * 30, favourite=i % 50 == 0)
            for i in range(chunk, min(IMAGES, chunk + 5000))])
    fill_s = time.perf_counter() - start
    queries = []
    for _ in range(QUERIES):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.3:  # typing: a prefix of the last word
            words[-1] = words[-1][: max(1, len(words[-1]) - 2)]
        queries.append(" ".join(words))
    text_ms, filtered_ms, hits = [], [], []
    for query in queries:
        start = time.perf_counter()
        results = gallery.search(query, limit=200)
        text_ms.append((time.perf_counter() - start) * 1000)
        hits.append(len(results))
        start = time.perf_counter()
        gallery.search(query, provider="openai", since=now - 86400 * 200, limit=200)
        filtered_ms.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    for query in queries[:50]:
        gallery.count(query)
    count_ms = (time.perf_counter() - start) * 1000 / 50
    hostile = ['"', "AND", "(", "*", 'a" OR "b', "NEAR(x y)"]
    for text in hostile:
        gallery.search(text)
    gallery.conn.close()
    return [
        f"gallery of {IMAGES:,} records filled in {fill_s:.1f} s (add_many, 5,000 per "
        "transaction, FTS5 index kept by triggers)",
        f"full-text search, {QUERIES} queries of 1-3 words (30 % ending in a prefix), newest "
        f"first, first 200: median {median(text_ms):.2f} ms, p95 {percentile(text_ms, 95):.2f} ms, "
        f"max {max(text_ms):.1f} ms; median {median(hits):.0f} results returned (target < 30 ms)",
        f"same queries + provider and date filters: median {median(filtered_ms):.2f} ms, "
        f"p95 {percentile(filtered_ms, 95):.2f} ms",
        f"count() for a query (the 'N images' label): mean {count_ms:.2f} ms",
    ]


def bench_thumbnails(folder: Path) -> list[str]:
    rng = random.Random(4)
    sources = []
    for i in range(THUMBS):
        image = Image.effect_noise((1024, 1024), 40).convert("RGB")
        overlay = Image.linear_gradient("L").resize((1024, 1024)).convert("RGB")
        image = Image.blend(image, overlay, 0.5 + rng.random() / 4)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        path = folder / f"src{i:03d}.png"
        path.write_bytes(buffer.getvalue())
        sources.append(path)
    size_kb = statistics.fmean(p.stat().st_size for p in sources) / 1024
    cache = folder / "thumbs"
    start = time.perf_counter()
    for path in sources:
        make_thumbnail(path, cache)
    cold_s = time.perf_counter() - start
    start = time.perf_counter()
    for path in sources:
        make_thumbnail(path, cache)
    warm_s = time.perf_counter() - start
    return [
        f"thumbnails 256 px from 1024x1024 PNGs (~{size_kb:.0f} KB each), one thread: "
        f"{THUMBS / cold_s:.1f} images/s ({cold_s / THUMBS * 1000:.0f} ms each); "
        f"cached lookups {THUMBS / warm_s:,.0f}/s",
    ]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="imagedesk-bench-") as tmp:
        folder = Path(tmp)
        lines = bench_submit(folder)
        lines += bench_recovery(folder)
        lines += bench_search(folder)
        lines += bench_thumbnails(folder)
    record("bench_store.py — job queue, gallery search, thumbnails", lines)


if __name__ == "__main__":
    main()
