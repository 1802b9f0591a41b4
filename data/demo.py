"""Demo data (placeholder until the generator lands)."""

from pathlib import Path

import pandas as pd

from data.batches import FeatureBatch, ctr_frame

SAMPLES = Path(__file__).resolve().parent / "samples"
REFERENCE_CSV = SAMPLES / "seed_images_287.csv"


def load_demo(store) -> dict:
    """Load the demo datasets into an empty store."""
    frame = pd.read_csv(REFERENCE_CSV)
    build = store.add_build("Reference 2018", "vision", FeatureBatch.from_wide(frame))
    store.replace_ctr("Reference 2018", "vision", ctr_frame(frame["image_name"], frame["ctr"]))
    return build
