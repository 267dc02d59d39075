"""Issue 18, step 6, the record's members (declared in results/experiments.toml): every
three-model ensemble of the candidate models, with each set of test-time views, scored on the
Training holdout; the best holdout accuracy picks the record attempt's members and views
(a tie: fewer pixels, then the earlier ensemble in the written order). PublicTest is not read.

    python results/choose_record_members.py --data ../shared/data/fer2013 \\
        --out results/ensembles/holdout/record_members.json results/models/record_tuned-s{0,1,2} \\
        results/models/record_tuned_cosine-s{0,1,2}

Each member's class probabilities on the holdout are computed once per set of views (with
``bionic evaluate``'s own scoring), then averaged for every ensemble, as ``bionic evaluate
M1 M2 M3 --split val`` averages them; the chosen ensemble's line is that command's accuracy."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import torch

from bionic_core.contract.errors import BionicError
from bionic_core.data import CLASS_NAMES
from bionic_core.host import load_catalogue
from bionic_core.studies.ensemble import (
    check_holdouts,
    combined_metrics,
    member_logits,
    union_of_training,
)
from bionic_core.studies.evaluation import checked_splits, data_record, load_model
from bionic_core.studies.evaluation_data import choose_splits
from bionic_core.training.inference_views import InferenceViews
from bionic_core.training.metrics import classification_metrics

VIEW_SETS = tuple(InferenceViews(mirror=True, shift=s) for s in (0, 1, 2, 3))
SIZE = 3  # members: three of 582,542 parameters stay under the 2 M limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    try:
        choose(args.models, args.data, args.out)
    except BionicError as exc:  # one line and exit 2, as bionic's own commands end
        print(f"choose_record_members: error: {exc}", file=sys.stderr)
        sys.exit(2)


def choose(specs: list[str], data: str, out: Path) -> None:
    members = [load_model(spec, None, load_catalogue(), "cpu") for spec in specs]
    check_holdouts(members, "val")
    union, named = union_of_training(members)
    first = members[0]
    (holdout,) = checked_splits(choose_splits(data, "val", first.config), union, data=data,
                                run_id=named, config=first.config, allow=False, drop=False)
    labels = torch.as_tensor(holdout.labels, dtype=torch.int64)

    probabilities: dict[tuple[str, int], torch.Tensor] = {}
    candidates = []
    for m in members:
        own = {}
        for views in VIEW_SETS:
            logits = member_logits(m, holdout, views)
            probabilities[m.model, views.shift] = torch.softmax(logits, dim=1)
            own[views.suffix] = classification_metrics(logits, labels, CLASS_NAMES)["accuracy"]
            print(f"{m.model} {views.suffix}: {100 * own[views.suffix]:.2f} %", flush=True)
        candidates.append({"model": m.model, "experiment": m.config.experiment,
                           "seed": m.config.seed, "run_key": m.config.key(),
                           "holdout_accuracy": own})

    ensembles = []
    for chosen in itertools.combinations([m.model for m in members], SIZE):
        for views in VIEW_SETS:
            metrics = combined_metrics([probabilities[name, views.shift] for name in chosen],
                                       labels)
            ensembles.append({"members": list(chosen), **views.record(),
                              "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]})
    # The best accuracy; a tie: fewer pixels, then the earlier ensemble (max keeps the first).
    best = max(ensembles, key=lambda e: (e["accuracy"], -e["shift"]))
    report = {"rule": "results/experiments.toml: issue 18, step 6, the record's members",
              "data": data_record(data, holdout), "size": SIZE,
              "candidates": candidates, "ensembles": ensembles, "chosen": best}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"chosen: {' + '.join(best['members'])}, mirror, shift {best['shift']}: "
          f"{100 * best['accuracy']:.2f} % on the holdout")


if __name__ == "__main__":
    main()
