"""Give a finished run trained before its preset sampled through a label check what ``ganaug train`` now writes at
the end of such a run: ``label_check.onnx`` (trained on the run's own training images, exactly as the Trainer does)
and a ``generator.onnx`` whose default sampling names it. Used to score runs trained under ``mnist@1`` with the
``mnist@2`` sampling; the run's weights are not touched.

    python -m benchmarks.add_label_check RUN [--data-root DATA]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--data-root", type=Path, default=None, help="where the run's data is now")
    args = p.parse_args(argv)

    from ganaug.hashing import file_sha256
    from ganaug.models.dcgan import with_center_of_mass
    from ganaug.outputs import CHECK_FILE
    from ganaug.train.checkpoint import CHECKPOINT
    from ganaug.train.export import export_generator, load_checkpoint_generator
    from ganaug.train.labelcheck import write_run_check
    from ganaug.train.runfolder import RunFolder
    from ganaug.train.trainer import _reopen

    run = RunFolder(args.run)
    config, data = _reopen(run, epochs=None, data_root=args.data_root)
    write_run_check(run.path, data, seed=config.seed)
    sampling = {**config.sampling, "label_check": CHECK_FILE}
    generator, meta = load_checkpoint_generator(run.path)
    if config.sample_center_of_mass:
        generator = with_center_of_mass(generator)
    provenance = {
        "data": json.loads((run.path / "config.json").read_text()).get("data"),
        "step": meta["step"],
        "checkpoint_sha256": file_sha256(run.path / CHECKPOINT),
    }
    export_generator(
        generator,
        run.path / "generator.onnx",
        classes=meta["classes"],
        provenance=provenance,
        overwrite=True,
        sampling=sampling,
        density_weighting=config.flatten_density,
    )
    print(f"{run.path}: wrote {CHECK_FILE} and generator.onnx with default sampling {sampling}")


if __name__ == "__main__":
    main()
