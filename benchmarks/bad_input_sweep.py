"""Bad input, faults and concurrency against the installed ``ganaug``: every case gives one line and a non-zero
exit before any work (or does what it should), with nothing of the user's changed.

Each case runs the real command in a subprocess (``python -m ganaug ...`` or a short Python snippet) inside a
scratch workspace; the workspace's files (path -> sha256) are taken before and after, and a refused case must
leave them exactly as they were. A refusal must print one line starting with ``Error:`` and no traceback.

    python -m benchmarks.bad_input_sweep --data-root ../shared/data --out /tmp/sweep

``--data-root`` (torchvision's layout) gives the real-sized Fashion-MNIST files the wrong-dataset case needs;
without it that case is skipped and the report says so. Writes ``sweep.md`` and ``sweep.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PY = sys.executable
GANAUG = [PY, "-m", "ganaug"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (files) or ``"dir"`` for everything under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link"
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@dataclass
class Outcome:
    name: str
    expect: str  # "refuse" or "ok"
    rc: int | None = None
    lines: list[str] = field(default_factory=list)
    traceback: bool = False
    unchanged: bool | None = None
    seconds: float = 0.0
    passed: bool = False
    note: str = ""


def run(argv: list[str], cwd: Path, timeout: float = 300) -> tuple[int, str]:
    proc = subprocess.run(argv, check=False, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def judge(name: str, ws: Path, action: Callable[[], tuple[int, str]], expect: str = "refuse") -> Outcome:
    before = tree(ws)
    start = time.perf_counter()
    try:
        rc, output = action()
    except subprocess.TimeoutExpired:
        rc, output = None, "timed out"
    outcome = Outcome(name, expect, rc=rc, seconds=time.perf_counter() - start)
    outcome.lines = [line for line in output.strip().splitlines() if line.strip()]
    outcome.traceback = "Traceback" in output
    after = tree(ws)
    outcome.unchanged = before == after
    if not outcome.unchanged:
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        outcome.note = "changed: " + ", ".join(changed[:4])
    if expect == "refuse":
        # One line that says what is wrong; click's usage errors put their "Usage:" and "Try ... for help." lines
        # before it, which say which command it was and are not part of the message.
        said = [x for x in outcome.lines if not x.startswith(("Usage:", "Try '"))]
        outcome.passed = (
            rc not in (0, None)
            and not outcome.traceback
            and outcome.unchanged
            and len(said) == 1
            and said[0].startswith("Error")
        )
    else:
        outcome.passed = rc == 0 and not outcome.traceback and outcome.unchanged
    return outcome


def snippet(code: str, cwd: Path) -> tuple[int, str]:
    """Run Python ``code``; an ``InputError`` it raises is printed as ``Error: <message>`` and exits 2."""
    wrapper = (
        "import sys\nfrom ganaug.errors import InputError\ntry:\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "except InputError as e:\n    print('Error:', e); sys.exit(2)\n"
    )
    return run([PY, "-c", wrapper], cwd)


def wait_for(path: Path, timeout: float = 120) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if path.exists():
            return True
        time.sleep(0.2)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=None, help="real MNIST / Fashion-MNIST (torchvision layout)")
    parser.add_argument("--out", type=Path, required=True, help="folder for sweep.md and sweep.json")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="ganaug-sweep-"))
    try:
        outcomes = sweep(scratch, args.data_root)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_report(outcomes, args.out)
    failed = [o.name for o in outcomes if not o.passed]
    print(f"{len(outcomes) - len(failed)}/{len(outcomes)} cases behave" + (f"; failing: {failed}" if failed else ""))
    sys.exit(1 if failed else 0)


def sweep(scratch: Path, data_root: Path | None) -> list[Outcome]:
    from PIL import Image

    ws = scratch / "ws"
    ws.mkdir()
    # Shared inputs: a tiny digits run (with its ONNX) and an image folder with a class named manifest.json.
    rc, out = run([*GANAUG, "train", "--dataset", "digits", "--epochs", "1", "--out", str(scratch / "run"),
                   "--threads", "1", "--quiet"], scratch)  # fmt: skip
    assert rc == 0, out
    run_dir = scratch / "run"
    folder = scratch / "imgs"
    for c, name in enumerate(["manifest.json", "other"]):
        (folder / name).mkdir(parents=True)
        for i in range(8):
            Image.new("L", (28, 28), color=40 * c + 3 * i).save(folder / name / f"{i}.png")
    rc, out = run([*GANAUG, "train", "--dataset", "imagefolder", "--data-root", str(folder), "--epochs", "1",
                   "--batch-size", "4", "--out", str(scratch / "run_mf"), "--threads", "1", "--quiet"], scratch)  # fmt: skip
    assert rc == 0, out
    g = lambda *a: lambda: run([*GANAUG, *a], ws)
    outcomes: list[Outcome] = []
    add = outcomes.append

    # 1. `ganaug evaluator train` follows the file rules.
    ev = ["evaluator", "train", "--dataset", "digits", "--epochs", "1", "--width", "4", "--threads", "1"]
    hf = ws / "hf"
    hf.mkdir()
    (hf / "model.safetensors").write_bytes(os.urandom(1000))
    (hf / "config.json").write_text("{}\n")
    add(judge("evaluator train into a folder of someone's model", ws, g(*ev, "--out", str(hf))))
    add(judge("... with --overwrite", ws, g(*ev, "--out", str(hf), "--overwrite")))
    mine = ws / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    add(
        judge("evaluator train --overwrite into a folder of other files", ws, g(*ev, "--out", str(mine), "--overwrite"))
    )
    add(
        judge(
            "evaluator train --out . in that folder", ws, lambda: run([*GANAUG, *ev, "--out", ".", "--overwrite"], mine)
        )
    )
    (ws / "a_file").write_text("mine\n")
    add(judge("evaluator train --out FILE", ws, g(*ev, "--out", str(ws / "a_file"))))
    add(judge("evaluator train --out FILE/sub", ws, g(*ev, "--out", str(ws / "a_file" / "sub"))))
    add(judge("evaluator train --out /proc/x", ws, g(*ev, "--out", "/proc/ganaug-x")))
    for seed in ("-1", str(2**63), str(2**64), str(2**128), str(10**40)):
        add(judge(f"evaluator train --seed {seed}", ws, g(*ev, "--out", str(ws / "e"), "--seed", seed)))
    for lr in ("nan", "inf"):
        add(judge(f"evaluator train --lr {lr}", ws, g(*ev, "--out", str(ws / "e"), "--lr", lr)))
    add(concurrent_evaluators(scratch, ev))

    # 2. Resource bounds, before work.
    onnx = str(run_dir / "generator.onnx")
    add(judge("generate --threads 100000", ws, g("generate", onnx, "--per-class", "10", "--threads", "100000",
                                                 "--out", str(ws / "o.npz"), "--format", "npz")))  # fmt: skip
    add(judge("generate --unflatten 1000000000", ws, g("generate", str(run_dir), "--per-class", "10", "--unflatten",
                                                       "1000000000", "--out", str(ws / "o.npz"), "--format", "npz")))  # fmt: skip
    add(judge("interpolate --steps 100000000", ws, g("interpolate", onnx, "--from", "4", "--to", "8", "--steps",
                                                     "100000000", "--out", str(ws / "walk.png"))))  # fmt: skip
    add(judge("SyntheticMix(lookahead=10**7)", ws, lambda: snippet(
        f"from ganaug import SyntheticMix\nSyntheticMix({onnx!r}, share=0.25, lookahead=10**7)", ws)))  # fmt: skip

    # 3. The data is what it claims to be.
    if data_root is not None and (data_root / "FashionMNIST" / "raw").is_dir():
        fake = ws / "data" / "MNIST" / "raw"
        fake.mkdir(parents=True)
        for f in (data_root / "FashionMNIST" / "raw").glob("*-ubyte"):
            shutil.copy(f, fake / f.name)
        add(judge("Fashion-MNIST files under MNIST/raw", ws, g("train", "--dataset", "mnist", "--data-root",
                                                              str(ws / "data"), "--out", str(ws / "r"))))  # fmt: skip
    else:
        add(Outcome("Fashion-MNIST files under MNIST/raw", "refuse", note="skipped: no --data-root"))

    # 4. The rest.
    png = scratch / "png"  # outside ws: this one writes, and must write the class's images beside the manifest
    add(judge("generate png of a class named manifest.json", ws, g("generate", str(scratch / "run_mf"), "--per-class",
                                                                   "2", "--format", "png", "--out", str(png)), "ok"))  # fmt: skip
    written = outcomes[-1]
    written.passed = written.passed and (png / "manifest.json").is_file() and len(list(png.glob("*/*.png"))) == 4
    written.note = f"class folders: {sorted(p.name for p in png.iterdir() if p.is_dir())}" if png.is_dir() else ""
    add(judge("train --out /proc/x", ws, g("train", "--dataset", "digits", "--epochs", "1", "--out", "/proc/ganaug-x")))
    add(judge("export --out /proc/x.onnx", ws, g("export", str(run_dir), "--out", "/proc/ganaug-x.onnx")))
    add(judge("interpolate --out /proc/x.png", ws, g("interpolate", onnx, "--from", "1", "--to", "2",
                                                     "--out", "/proc/ganaug-x.png")))  # fmt: skip
    corrupt = ws / "corrupt"
    shutil.copytree(run_dir, corrupt)
    (corrupt / "checkpoint.pt").write_bytes(b"\x80\x02h\x05.")
    add(judge("train --resume with a corrupt checkpoint.pt", ws, g("train", "--resume", str(corrupt), "--epochs", "2")))
    bench = ["bench", "downstream", "--profile", "smoke", "--out", str(ws / "bench")]
    for extra in (["--budgets", "x"], ["--budgets", ""], ["--sweep", "x"], ["--budgets", "-5"], ["--seeds", "0"],
                  ["--seeds", "-1"], ["--evaluator", str(ws / "missing")], ["--full-gan", str(ws / "missing")]):  # fmt: skip
        add(judge("bench downstream " + " ".join(repr(e) if not e else e for e in extra), ws, g(*bench, *extra)))
    repo = Path(__file__).resolve().parents[1]
    add(judge("python benchmarks/downstream --report-only (folder form)", ws, lambda: run(
        [PY, str(repo / "benchmarks" / "downstream"), "--report-only", "--profile", "smoke", "--out",
         str(ws / "nothing-here")], ws)))  # fmt: skip
    mix = f"from ganaug import SyntheticMix\nm = SyntheticMix({onnx!r}, share=0.25"
    add(judge("SyntheticMix(threads='x')", ws, lambda: snippet(mix + ", threads='x')", ws)))
    add(judge("SyntheticMix(normalize=(nan, 1.0))", ws, lambda: snippet(mix + ", normalize=(float('nan'), 1.0))", ws)))
    add(judge("SyntheticMix.load_state_dict(None)", ws, lambda: snippet(mix + ")\nm.load_state_dict(None)", ws)))
    add(judge("SyntheticMix.load_state_dict(negative step)", ws, lambda: snippet(
        mix + ")\ns = m.state_dict()\ns['step'] = -3\nm.load_state_dict(s)", ws)))  # fmt: skip
    add(judge("augment(label_filter='x')", ws, lambda: snippet(
        "from ganaug import augment\nfrom ganaug.feed.dataset import SourceDataset\n"
        f"augment(SourceDataset('digits'), {onnx!r}, per_class=2, label_filter='x')", ws)))  # fmt: skip
    add(resume_while_training(scratch))

    # 5. SIGTERM cleans temps and the lock as SIGINT does.
    for sig in (signal.SIGINT, signal.SIGTERM):
        add(interrupted(scratch, sig))
    return outcomes


def concurrent_evaluators(scratch: Path, ev: list[str]) -> Outcome:
    """Two `evaluator train --out E` at once: one writes E, the other is refused in one line."""
    out = scratch / "conc-ev"
    start = time.perf_counter()
    first = subprocess.Popen([*GANAUG, *ev, "--epochs", "3", "--out", str(out)], env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    lock = out.with_name(f".{out.name}.lock")
    wait_for(lock)
    rc, output = run([*GANAUG, *ev, "--out", str(out)], scratch)
    first.communicate(timeout=600)
    o = Outcome("two evaluator train --out E at once", "refuse", rc=rc, seconds=time.perf_counter() - start)
    o.lines = output.strip().splitlines()
    o.traceback = "Traceback" in output
    o.passed = rc != 0 and len(o.lines) == 1 and "another ganaug process" in output and first.returncode == 0
    o.unchanged = first.returncode == 0
    o.note = f"the first exited {first.returncode}"
    return o


def resume_while_training(scratch: Path) -> Outcome:
    """`train --resume X` while another process trains X (no checkpoint yet): it says so."""
    out = scratch / "busy"
    start = time.perf_counter()
    first = subprocess.Popen([*GANAUG, "train", "--dataset", "digits", "--epochs", "200", "--out", str(out),
                              "--threads", "1", "--quiet"], env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    wait_for(out.with_name(f".{out.name}.lock"))
    time.sleep(1)
    rc, output = run([*GANAUG, "train", "--resume", str(out)], scratch)
    first.send_signal(signal.SIGINT)
    first.wait(120)
    o = Outcome("train --resume X while X is being trained", "refuse", rc=rc, seconds=time.perf_counter() - start)
    o.lines = output.strip().splitlines()
    o.traceback = "Traceback" in output
    o.passed = rc != 0 and len(o.lines) == 1 and "another" in output and "--overwrite" not in output
    return o


def interrupted(scratch: Path, sig: signal.Signals) -> Outcome:
    """A writer stopped by ``sig`` mid-run leaves no lock and no temp file, and exits non-zero."""
    out = scratch / f"sig-{sig.name}"
    start = time.perf_counter()
    proc = subprocess.Popen([*GANAUG, "train", "--dataset", "digits", "--epochs", "200", "--out", str(out),
                             "--threads", "1", "--quiet"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    wait_for(out / "config.json", 120)
    time.sleep(1.5)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=120)
    left = [p.name for p in scratch.glob(f".{out.name}*")] + [p.name for p in out.rglob(".*tmp-*")]
    o = Outcome(f"train stopped by {sig.name}", "refuse", rc=proc.returncode, seconds=time.perf_counter() - start)
    o.lines = output.strip().splitlines()
    o.traceback = "Traceback" in output
    o.passed = proc.returncode != 0 and not left and not o.traceback
    o.unchanged = not left
    o.note = f"left: {left}" if left else ""
    return o


def write_report(outcomes: list[Outcome], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps([o.__dict__ for o in outcomes], indent=2) + "\n")
    rows = [
        "| case | expect | exit | lines | traceback | files unchanged | s | behaves | the error line (or first line) / note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        said = next((x for x in o.lines if x.startswith("Error")), o.lines[0] if o.lines else "")
        first = said[:140].replace("|", "\\|")
        rows.append(
            f"| {o.name} | {o.expect} | {o.rc} | {len(o.lines)} | {'yes' if o.traceback else 'no'} | "
            f"{o.unchanged} | {o.seconds:.1f} | {'yes' if o.passed else '**NO**'} | {first} {o.note} |"
        )
    behaving = sum(o.passed for o in outcomes)
    (out / "sweep.md").write_text(f"{behaving}/{len(outcomes)} cases behave.\n\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
