"""A deterministic, realistic demo build, and the loader that fills an empty store on first start.

``demo_build`` draws what a featurizer and an ad server would send for one business: per image,
the pixel fractions of the 147 CSS named colours (a few dominant colours, most near 0) and about
330 Vision-style label confidences (most labels absent from most images), plus impressions,
clicks and CTR with a few known effects planted in (``PLANTED_EFFECTS``). The same seed gives the
same build bit for bit.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from data.batches import FeatureBatch, ctr_frame

SAMPLES = Path(__file__).resolve().parent / "samples"
REFERENCE_CSV = SAMPLES / "seed_images_287.csv"

DEMO_BUSINESS = "Northwind Outfitters"
DEMO_SOURCE = "vision"
REFERENCE_BUSINESS = "Reference 2018"
REFERENCE_SOURCE = "vision"

DEFAULT_SEED = 42
DEFAULT_IMAGES = 659
DEFAULT_FEATURES = 480

# The true effects in the demo data: an image with the label (any confidence above 0) has its
# expected CTR multiplied by this factor. Every other feature has no effect of its own, though
# labels that travel with a planted one (``font`` with ``text``) pick some of it up, as in life.
PLANTED_EFFECTS = {
    "text": 0.70,
    "poster": 0.75,
    "smile": 1.35,
    "headwear": 1.35,
}

# The demo's clicks and impressions arrive per day, over DAILY_DAYS days from DAILY_START, their
# sums over every day exactly the counts above (so every all-days number stays what it was). One
# planted effect fades with time, as creatives wear out: images with FADING_FEATURE get its
# planted lift at first and none by the last day (creative fatigue), visible in GET /api/trend.
DAILY_START = date(2026, 9, 1)
DAILY_DAYS = 90
FADING_FEATURE = "smile"

# Share of images in which a label is detected, for the labels whose rate is not drawn at random.
_LABEL_RATES = {
    "text": 0.30,
    "poster": 0.15,
    "smile": 0.16,
    "headwear": 0.13,
    "girl": 0.20,
    "fun": 0.17,
    "product": 0.12,
    "sky": 0.12,
}
_NO_CTR_SHARE = 0.02  # images uploaded before they had any impressions
_BASE_CTR = 0.0098
_CTR_NOISE_SIGMA = 0.30

CSS_COLOURS = (
    "aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue "
    "blueviolet brown burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk "
    "crimson cyan darkblue darkcyan darkgoldenrod darkgray darkgreen darkgrey darkkhaki "
    "darkmagenta darkolivegreen darkorange darkorchid darkred darksalmon darkseagreen "
    "darkslateblue darkslategray darkslategrey darkturquoise darkviolet deeppink deepskyblue "
    "dimgray dimgrey dodgerblue firebrick floralwhite forestgreen fuchsia gainsboro ghostwhite "
    "gold goldenrod gray grey green greenyellow honeydew hotpink indianred indigo ivory khaki "
    "lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan "
    "lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen "
    "lightskyblue lightslategray lightslategrey lightsteelblue lightyellow lime limegreen linen "
    "magenta maroon mediumaquamarine mediumblue mediumorchid mediumpurple mediumseagreen "
    "mediumslateblue mediumspringgreen mediumturquoise mediumvioletred midnightblue mintcream "
    "mistyrose moccasin navajowhite navy oldlace olive olivedrab orange orangered orchid "
    "palegoldenrod palegreen paleturquoise palevioletred papayawhip peachpuff peru pink plum "
    "powderblue purple red rosybrown royalblue saddlebrown salmon sandybrown seagreen seashell "
    "sienna silver skyblue slateblue slategray slategrey snow springgreen steelblue tan teal "
    "thistle tomato turquoise violet wheat white whitesmoke yellow yellowgreen"
).split()

# Colours that fill much of a typical ad: backgrounds, type and shadows.
_COMMON_COLOURS = {
    "black": 12.0,
    "white": 12.0,
    "whitesmoke": 5.0,
    "gainsboro": 4.0,
    "lightgray": 4.0,
    "darkgray": 4.0,
    "gray": 4.0,
    "dimgray": 5.0,
    "darkslategray": 5.0,
    "silver": 3.0,
    "snow": 2.0,
    "midnightblue": 2.0,
    "skyblue": 2.0,
    "steelblue": 2.0,
    "tan": 2.0,
    "saddlebrown": 2.0,
    "sienna": 2.0,
    "rosybrown": 2.0,
    "darkolivegreen": 2.0,
    "firebrick": 2.0,
}

# Vision-style labels, roughly most common first; the planted ones lead so a small build has them.
VISION_LABELS = (
    "text|poster|smile|headwear|girl|fun|font|product|sky|people|photograph|fashion|hair|"
    "facial expression|happy|t-shirt|cap|hat|sleeve|outerwear|jacket|jeans|denim|shoe|footwear|"
    "sneakers|boot|sunglasses|eyewear|glasses|beard|facial hair|chin|forehead|eyebrow|cheek|lip|"
    "nose|neck|shoulder|arm|hand|finger|gesture|thumb|selfie|portrait|portrait photography|"
    "photo shoot|model|fashion design|fashion accessory|street fashion|style|cool|leisure|"
    "recreation|vacation|travel|tourism|adventure|hiking|backpack|bag|handbag|luggage and bags|"
    "tent|camping|mountain|mountainous landforms|hill|highland|valley|cliff|rock|bedrock|"
    "outcrop|geology|landscape|natural landscape|nature|wilderness|forest|tree|woody plant|"
    "plant|grass|meadow|field|flower|petal|leaf|branch|trunk|twig|autumn|winter|snow|ice|"
    "freezing|glacial landform|summer|spring|beach|sea|ocean|coast|shore|wave|water|lake|"
    "river|stream|watercourse|waterfall|reflection|cloud|cumulus|horizon|sunset|sunrise|"
    "dusk|morning|evening|afterglow|atmosphere|daytime|sunlight|light|lighting|darkness|"
    "night|midnight|city|urban area|street|road|building|architecture|facade|window|door|"
    "wall|brick|house|skyscraper|tower|bridge|town|neighbourhood|metropolitan area|car|"
    "vehicle|motor vehicle|automotive design|wheel|tire|bicycle|bicycle wheel|cycling|"
    "mountain bike|motorcycle|skateboard|skateboarding|surfing|surfboard|board sport|"
    "extreme sport|sports|sports equipment|sports uniform|ball|running|jogging|climbing|"
    "rock climbing|skiing|ski|snowboard|snowboarding|kayak|canoe|boat|boating|fishing|"
    "recreational fishing|dog|dog breed|carnivore|companion dog|pet|animal|wildlife|horse|"
    "bird|fawn|food|tableware|drink|coffee|coffee cup|cup|mug|bottle|water bottle|glass|"
    "dishware|plate|recipe|cuisine|ingredient|fruit|orange|lime|plum|olive|tomato|chocolate|"
    "salmon|wheat|peach|lemon|apple|berry|breakfast|picnic|bonfire|campfire|fire|flame|heat|"
    "black|white|red|blue|green|yellow|pink|purple|brown|grey|gold|silver|beige|violet|"
    "magenta|turquoise|teal|aqua|maroon|navy|khaki|lavender|ivory|linen|coral|tan|"
    "electric blue|cobalt blue|azure|pattern|plaid|textile|wool|woolen|fur|leather|pocket|"
    "zipper|button|collar|hood|scarf|glove|sock|knit cap|beanie|fedora|sun hat|cowboy hat|"
    "helmet|bicycle helmet|goggles|watch|wrist|jewellery|necklace|earrings|bracelet|ring|"
    "logo|brand|label|graphics|graphic design|illustration|art|painting|drawing|visual arts|"
    "design|rectangle|circle|triangle|line|parallel|symmetry|font design|typography|"
    "advertising|banner|signage|sign|screenshot|album cover|book cover|"
    "music|musician|music artist|performance|concert|stage|event|crowd|audience|festival|"
    "party|celebration|friendship|love|romance|interaction|conversation|sitting|standing|"
    "walking|jumping|happiness|laugh|joy|emotion|relaxation|comfort|calm|peace|"
    "child|toddler|baby|boy|woman|man|gentleman|lady|family|team|crew|"
    "room|interior design|furniture|table|chair|bed|couch|shelf|floor|flooring|wood|"
    "hardwood|plank|metal|steel|glass bottle|box|carton|package|packaging and labeling|"
    "paper|paper product|card|calendar|map|compass|flashlight|lantern|rope|knife|tool|"
    "camera|camera lens|smartphone|mobile phone|gadget|electronic device|headphones|"
    "audio equipment|microphone|guitar|drum|string instrument|musical instrument|"
    "vintage clothing|retro style|monochrome|monochrome photography|black-and-white|"
    "still life photography|macro photography|close-up|stock photography|flash photography|"
    "tints and shades|trail|path|"
    "asphalt|sidewalk|shadow|silhouette|sport venue|stadium|track and field|athlete|"
    "physical fitness|exercise|yoga|stretching|muscle|tattoo|skin|eyelash|iris|makeup|"
    "lipstick|cosmetics|perfume|personal care|hairstyle|long hair|blond|brown hair|"
    "black hair|ponytail|hair accessory|headband|bandana|turban|veil|costume|uniform"
).split("|")

# Template and name parts of the image names, as an ad server's creative ids look.
_NAME_ADJECTIVES = (
    "velvet neon silver quiet wild lunar amber hollow electric paper golden crimson iron "
    "northern salt glass copper cedar midnight broken static lucky rusty fading echo "
    "violet honey stone dusty cobalt"
).split()
_NAME_NOUNS = (
    "harbor fox ridge pines owls tides river arrows wolves canyon lanterns foxes coast "
    "drifters summit hollow pilots atlas ember meadow sparrows grove comets valley anchors "
    "thistle birches falcons rangers"
).split()
_CAMPAIGNS = (
    "springdrop summerlaunch falltour wintersale pressshot newcollection trailseries "
    "basecamp holidaygift backtoschool weekender lookbook fieldnotes raingear "
    "summitpush coastline nightshift festivalpass clearance restock"
).split()
_TEMPLATES = (
    "achalf achalf8 avhalf 3phones pressshot merlinmachinet3 square1 story916 carousel "
    "upnext-pressshot bb-lifestyle splitgrid fullbleed textcta gradientcta"
).split()


def feature_names(n_features: int = DEFAULT_FEATURES) -> tuple[list[str], list[str]]:
    """The colour and label names of a build with ``n_features`` features.

    All 147 colours at the default size (fewer, in proportion, for a smaller build); a colour
    whose name is also a label gets the ``_x`` suffix, so ``orange`` and ``orange_x`` can both exist.
    Beyond the label vocabulary, labels are numbered variants (``sky_2``) for scale tests.
    """
    if n_features < len(PLANTED_EFFECTS) + 1:
        raise ValueError(f"n_features must be at least {len(PLANTED_EFFECTS) + 1}, got {n_features}")
    n_colours = min(len(CSS_COLOURS), max(1, n_features * len(CSS_COLOURS) // DEFAULT_FEATURES))
    n_labels = n_features - n_colours
    labels = list(VISION_LABELS[:n_labels])
    copy = 2
    while len(labels) < n_labels:
        labels.extend(f"{name}_{copy}" for name in VISION_LABELS[: n_labels - len(labels)])
        copy += 1
    label_set = set(labels)
    colours = [f"{c}_x" if c in label_set else c for c in CSS_COLOURS[:n_colours]]
    return colours, labels


def _image_names(rng: np.random.Generator, n_images: int) -> list[str]:
    parts = (_NAME_ADJECTIVES, _NAME_NOUNS, _CAMPAIGNS, _TEMPLATES)
    sizes = [len(p) for p in parts]
    total = int(np.prod(sizes))
    if n_images > total:
        raise ValueError(f"n_images must be at most {total}, got {n_images}")
    codes = rng.choice(total, size=n_images, replace=False)
    names = []
    for code in codes.tolist():
        adjective, noun, campaign, template = (parts[k][i] for k, i in enumerate(np.unravel_index(code, sizes)))
        names.append(f"imgcontent.{adjective}{noun}-{campaign}_imgtemp.{template}")
    return sorted(names)


def _colour_fractions(rng: np.random.Generator, n_images: int, colours: list[str]) -> np.ndarray:
    """Pixel fractions: a few dominant colours and some traces per image, summing to at most 1."""
    n = len(colours)
    popularity = rng.lognormal(0.0, 1.0, n)
    for j, name in enumerate(colours):
        popularity[j] += _COMMON_COLOURS.get(name.removesuffix("_x"), 0.0)
    popularity /= popularity.sum()
    out = np.zeros((n_images, n))
    counts = np.minimum(2 + rng.poisson(4.0, n_images), n)
    for i, k in enumerate(counts.tolist()):
        picked = rng.choice(n, size=k, replace=False, p=popularity)
        # A small alpha gives a few large shares and many tiny ones, as in a real palette.
        shares = rng.dirichlet(np.full(k, 0.45))
        # The extractor leaves some pixels unassigned (anti-aliasing, gradients).
        out[i, picked] = shares * rng.uniform(0.80, 0.98)
    # Fractions below a pixel in ten thousand are not reported.
    out[out < 1e-4] = 0.0
    return out


def _label_presence(rng: np.random.Generator, n_images: int, labels: list[str]) -> np.ndarray:
    rates = np.exp(rng.uniform(np.log(0.01), np.log(0.30), len(labels)))
    for j, name in enumerate(labels):
        rates[j] = _LABEL_RATES.get(name, rates[j])
    present = rng.random((n_images, len(labels))) < rates
    # Posters and type come together in ads, as Vision's "font" does with "text".
    position = {name: j for j, name in enumerate(labels)}
    text = present[:, position["text"]]
    for name, with_text, without_text in (("poster", 0.30, 0.09), ("font", 0.65, 0.03)):
        if name in position:
            p = np.where(text, with_text, without_text)
            present[:, position[name]] = rng.random(n_images) < p
    return present


def demo_build(
    seed: int = DEFAULT_SEED,
    n_images: int = DEFAULT_IMAGES,
    n_features: int = DEFAULT_FEATURES,
) -> tuple[FeatureBatch, pd.DataFrame]:
    """A realistic build (colours and Vision labels) and its CTR set, the same for the same seed."""
    rng = np.random.default_rng(seed)
    colours, labels = feature_names(n_features)
    images = _image_names(rng, n_images)

    colour_values = _colour_fractions(rng, n_images, colours)
    present = _label_presence(rng, n_images, labels)
    # Vision reports labels from 0.5 up, most of them well above.
    label_values = np.where(present, 0.5 + 0.49 * rng.beta(2.0, 1.3, present.shape), 0.0)
    # Featurizers send float32 numbers; keep their exact float64 images.
    matrix = np.hstack([colour_values, label_values]).astype(np.float32).astype(np.float64)

    log_effect = np.zeros(n_images)
    for j, name in enumerate(labels):
        if name in PLANTED_EFFECTS:
            log_effect += np.log(PLANTED_EFFECTS[name]) * present[:, j]
    true_ctr = np.clip(_BASE_CTR * np.exp(log_effect + rng.normal(0.0, _CTR_NOISE_SIGMA, n_images)), 0.0, 1.0)
    impressions = np.rint(np.exp(rng.uniform(np.log(3_000), np.log(100_000), n_images))).astype(np.int64)
    clicks = rng.binomial(impressions, true_ctr)
    with_ctr = np.ones(n_images, dtype=bool)
    with_ctr[rng.choice(n_images, size=round(_NO_CTR_SHARE * n_images), replace=False)] = False

    rows, cols = np.nonzero(matrix)
    batch = FeatureBatch(
        images=images,
        features=colours + labels,
        values=list(zip(rows.tolist(), cols.tolist(), matrix[rows, cols].tolist())),
    )
    keep = np.flatnonzero(with_ctr)
    ctr = ctr_frame(
        [images[i] for i in keep],
        clicks[keep] / impressions[keep],
        clicks=clicks[keep],
        impressions=impressions[keep],
    )
    return batch, ctr


def demo_daily(
    batch: FeatureBatch, ctr: pd.DataFrame, seed: int = DEFAULT_SEED, days: int = DAILY_DAYS
) -> pd.DataFrame:
    """The CTR set's clicks and impressions spread over ``days`` days (image, day, clicks, impressions).

    Per image the days' sums are exactly its clicks and impressions. Impressions follow a shared
    daily traffic curve with per-image noise; clicks follow the impressions, and for images with
    ``FADING_FEATURE`` lean towards the first days, so that its lift over the others falls from
    about twice its planted size to none (the mean lift over every day is unchanged).
    """
    rng = np.random.default_rng(seed + 1)  # not the build's stream: the build stays bit for bit
    column = batch.features.index(FADING_FEATURE)
    fading = {batch.images[i] for i, j, value in batch.values if j == column and value > 0}
    traffic = rng.gamma(20.0, 1.0, days) * (1.0 + 0.25 * np.sin(np.arange(days) * 2 * np.pi / 7))
    elapsed = np.arange(days) / (days - 1)
    late = 1.0 / PLANTED_EFFECTS[FADING_FEATURE]  # the last day: no lift left
    day_names = [(DAILY_START + timedelta(days=d)).isoformat() for d in range(days)]
    images, day_col, click_col, impression_col = [], [], [], []
    for image, clicks, impressions in zip(ctr["image"], ctr["clicks"], ctr["impressions"]):
        weights = traffic * rng.gamma(8.0, 1.0, days)
        shown = rng.multinomial(int(impressions), weights / weights.sum())
        lean = np.ones(days)
        if image in fading:
            lean = (2.0 - late) + (late - (2.0 - late)) * elapsed  # linear, from 2 - late down to late
        rate = shown * lean
        clicked = rng.multinomial(int(clicks), rate / rate.sum()) if rate.sum() > 0 else np.zeros(days, np.int64)
        _fit_clicks(clicked, shown)
        images += [image] * days
        day_col += day_names
        click_col += clicked.tolist()
        impression_col += shown.tolist()
    return pd.DataFrame({"image": images, "day": day_col, "clicks": click_col, "impressions": impression_col})


def _fit_clicks(clicked: np.ndarray, shown: np.ndarray) -> None:
    """Move clicks from days with more clicks than impressions to the days with room (in place)."""
    excess = int(np.clip(clicked - shown, 0, None).sum())
    if not excess:
        return
    np.minimum(clicked, shown, out=clicked)
    for d in np.argsort(shown - clicked)[::-1]:
        room = min(int(shown[d] - clicked[d]), excess)
        clicked[d] += room
        excess -= room
        if not excess:
            return


def load_demo(store, seed: int = DEFAULT_SEED) -> dict:
    """Load the reference dataset, then the demo build with its dated metrics (``demo_daily``), so
    the demo is the most recently updated, and a thumbnail drawn for every image of both (``data.demo_images``)."""
    frame = pd.read_csv(REFERENCE_CSV)
    reference = store.add_build(REFERENCE_BUSINESS, REFERENCE_SOURCE, FeatureBatch.from_wide(frame))
    store.replace_ctr(REFERENCE_BUSINESS, REFERENCE_SOURCE, ctr_frame(frame["image_name"], frame["ctr"]))

    batch, ctr = demo_build(seed)
    demo = store.add_build(DEMO_BUSINESS, DEMO_SOURCE, batch)
    # As the ad server sends them: per day. Their sums over every day are ``ctr``'s counts.
    store.replace_metrics(DEMO_BUSINESS, DEMO_SOURCE, demo_daily(batch, ctr, seed))
    # Pictures drawn from each image's features, so the gallery has thumbnails on the first run.
    from data.demo_images import demo_thumbnails

    store.put_thumbnails(REFERENCE_BUSINESS, REFERENCE_SOURCE, demo_thumbnails(FeatureBatch.from_wide(frame)))
    store.put_thumbnails(DEMO_BUSINESS, DEMO_SOURCE, demo_thumbnails(batch))
    return {
        "demo": {**_summary(demo), "images_with_ctr": len(ctr)},
        "reference": {**_summary(reference), "images_with_ctr": len(frame)},
    }


def _summary(build: dict) -> dict:
    keys = ("business", "source", "build_id", "images", "features", "values")
    return {k: build[k] for k in keys}
