"""Regenerate sd15/tokenizer/vocab.json and merges.txt from CLIP's BPE table.

The table (``bpe_simple_vocab_16e6.txt.gz``) ships inside the ``open_clip_torch``
wheel (and OpenAI's ``clip`` package), both MIT-licensed. Hugging Face's
``openai/clip-vit-large-patch14`` tokenizer, used by Stable Diffusion 1.x, is
derived from it the same way: 256 byte symbols, the same with ``</w>``, the
first 48,894 merges, then the start and end tokens (49,408 entries).

    python packaging/make_sd15_tokenizer.py path/to/bpe_simple_vocab_16e6.txt.gz
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

N_MERGES = 49152 - 256 - 2


def byte_symbols() -> list[str]:
    """CLIP's byte -> printable character table, in CLIP's order (printable bytes first)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def main(bpe_gz: Path, out: Path) -> None:
    with gzip.open(bpe_gz) as handle:
        lines = handle.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:N_MERGES + 1]]
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    print(f"{len(vocab)} tokens, {len(merges)} merges -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parents[1] / "desktop_app" / "data"
         / "model_skeletons" / "sd15" / "tokenizer")
