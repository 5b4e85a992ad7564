"""Writes notebooks/01_eda.ipynb from the cell list below (kept for review; edit the notebook itself)."""
import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
md("""# 01 · Exploring the data

## Overview
Before training anything we look hard at the data. This chapter reads every file of a
folder-per-class brain-MRI dataset once and answers the questions that decide whether later
numbers can be trusted:

1. How many images does each class have, in each split?
2. What sizes and colour modes do the files come in, and how bright are they?
3. Which files cannot be read, and why?
4. Which images are exact or near copies of each other, and does any copy sit in **both**
   the training and the test split (leakage that inflates test scores)?

It writes `manifest.csv` (one row per file), a cache of the decoded images and
`eda_summary.json` into the run directory; every later chapter starts from them.

## Prerequisites
| Concept | Importance | Time to learn |
|---|---|---|
| NumPy arrays and pandas DataFrames | necessary | 30 min |
| What an MRI slice shows (axial, coronal, sagittal; T1 and T2) | helpful | 15 min |

## Parameters
Change these to use your own data: point `data_dir` at a folder holding `Training/` and
`Testing/` (one sub-folder per class), or at a folder of class sub-folders with no split.
`tumornb run` sets them from a profile."""),
code("""data_dir = None  # None: the embedded phantom dataset, written into the run directory
run_dir = "../runs/notebook"
image_size = 128  # side of the square grey-level images later chapters use
seed = 0
test_fraction = 0.2  # used only when the dataset has no split of its own
near_duplicate_bits = 2  # pHash bits (of 64) two images may differ in and still be "near copies"
phantom_train_per_class = 300
phantom_test_per_class = 75
embedding_max_images = 1500""", metadata={"tags": ["parameters"]}),
md("## Imports and seed"),
code("""import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from tqdm import tqdm

import tumornb
from tumornb import plots
from tumornb.audit import audit_dataset, embed_2d, format_audit, resolve_data_dir
from tumornb.data import load_images, read_manifest
from tumornb.dedup import leakage
from tumornb.paths import RunDir

run = RunDir(run_dir)
rng = np.random.default_rng(seed)
print(f"tumornb {tumornb.__version__}; seed {seed}; image size {image_size} px")"""),
md("""## The dataset
With `data_dir = None` the chapter uses the project's **phantom**: synthetic brain-MRI slices
drawn by `tumornb.phantom` from the seed, in the same layout as the Kaggle downloads. Each slice
has scalp, skull, a folded grey-matter ribbon around white matter, ventricles or cerebellum,
T1/T1c/T2 contrast, scanner noise and a smooth intensity inhomogeneity. Tumour classes add a
lesion: an irregular mass with oedema (glioma), a round mass against the skull (meningioma) or
a small midline mass at the skull base (pituitary). Lesion masks are kept beside the scans, so
later chapters can check where the classifier looks."""),
code("""data_path = resolve_data_dir(
    data_dir,
    run_dir,
    phantom_train_per_class=phantom_train_per_class,
    phantom_test_per_class=phantom_test_per_class,
    seed=seed,
)
print("phantom data" if data_dir is None else "user data", "->", data_path.name)"""),
md("""## Reading every file once
`audit_dataset` decodes each file once (in parallel; large JPEGs are decoded at a reduced scale
directly), hashes its bytes (SHA-256) and its content (a perceptual hash), and records size,
colour mode and, for a file it cannot use, the reason. Unreadable files are counted and listed,
never fatal. The decoded images are cached, keyed by the manifest and the image size, so the
`load_images` call below and later chapters do not decode again."""),
code("""summary = audit_dataset(
    data_path,
    run_dir,
    image_size=image_size,
    seed=seed,
    test_fraction=test_fraction,
    near_duplicate_bits=near_duplicate_bits,
    progress=tqdm,
)
manifest = read_manifest(run.manifest)
images = load_images(manifest, image_size, cache_dir=run.cache_dir)
usable = manifest[manifest["error"] == ""].reset_index(drop=True)
manifest["file"] = manifest["path"].str.removeprefix(str(data_path) + "/")
print(f"{len(manifest)} files, {len(usable)} usable images of shape {images.shape[1:]}")"""),
md("## Class balance"),
code("""# NBVAL_CHECK_OUTPUT
counts = usable.groupby(["split", "label"]).size().unstack(fill_value=0)
counts["total"] = counts.sum(axis=1)
print(counts.to_string())"""),
code("plots.class_counts_chart(manifest)"),
md("""An imbalance between classes matters twice: a classifier can score well by favouring the
large classes, and accuracy alone hides it. Chapter 04 therefore reports per-class recall and
macro-averaged F1 beside accuracy.

## Image sizes and colour modes
Real downloads mix sizes and save some grey scans as three-channel RGB. Every image is padded to
a square with black borders and resized to `image_size`, so sizes do not change a scan's
proportions; colour is converted to luminance."""),
code("plots.size_chart(manifest)"),
code("""# NBVAL_CHECK_OUTPUT
print(usable["mode"].value_counts().to_string())"""),
md("""## Intensity profiles
How bright are the scans of each class? If a class were brighter overall, a classifier could
learn brightness instead of anatomy; the histograms and the mean images show whether that
shortcut exists."""),
code("""fig, ax = plt.subplots(figsize=(7, 3.5))
plots.intensity_histograms(images, usable["label"], ax=ax)
plt.show()"""),
code("""plots.mean_images(images, usable["label"])
plt.show()"""),
md("## A sample of each class"),
code("""plots.image_grid(images, usable["label"], per_class=6, seed=seed)
plt.show()"""),
md("## Files that could not be read"),
code("""# NBVAL_CHECK_OUTPUT
unreadable = manifest.loc[manifest["error"] != "", ["file", "error"]]
print(f"{len(unreadable)} of {len(manifest)} files could not be read")"""),
code("""if len(unreadable):
    display(unreadable.head(50))"""),
md("""## Duplicates and leakage
Two files are **exact** duplicates when their bytes are identical, and **near** duplicates when
their perceptual hashes differ in at most `near_duplicate_bits` of 64 bits (the same scan
re-saved or resized). Duplicates are grouped; a group with members in both splits is
**leakage**: the model is tested on an image it was trained on."""),
code("""# NBVAL_CHECK_OUTPUT
print(f"{summary['n_duplicate_groups']} duplicate groups holding {summary['n_in_duplicate_groups']} images")
print(f"{summary['n_exact_copies']} images have a byte-identical copy")
print(f"{summary['n_leaking_groups']} groups cross the train/test split")"""),
code("""leaks = leakage(manifest)
print(f"{summary['n_test_leaked']} of {summary['n_test']} test images have a duplicate in training")
if len(leaks):
    leaks["example"] = leaks["example"].str.replace(str(data_path) + "/", "", regex=False)
    display(leaks.head(20))"""),
code("""row_of = pd.Series(np.arange(len(usable)), index=usable["path"])
pairs = []
for group in leaks["dup_group"].head(6):
    members = manifest[manifest["dup_group"] == group]
    test_path = members.loc[members["split"] == "test", "path"].iloc[0]
    train_path = members.loc[members["split"] == "train", "path"].iloc[0]
    pairs.append((row_of[test_path], row_of[train_path]))
if pairs:
    test_rows, train_rows = map(list, zip(*pairs))
    plots.image_pairs(images[test_rows], images[train_rows], captions=["test (top) / train"] * len(pairs))
    plt.show()
else:
    print("No duplicate crosses the split: nothing to show.")"""),
md("""## A map of the images
t-SNE places similar images near each other. Classes that form separate islands are easy to
tell apart from raw pixels; classes that mix need the classifier of chapter 03."""),
code("""coords, index = embed_2d(images, seed=seed, max_images=embedding_max_images)
plots.embedding_chart(coords, usable["label"].iloc[index], usable["split"].iloc[index], usable["path"].iloc[index])"""),
md("## Summary"),
code("""leak_share = summary["n_test_leaked"] / max(summary["n_test"], 1)
display(Markdown(
    f"- **{summary['n_usable']}** usable images of {summary['n_files']} files; "
    f"**{summary['n_unreadable']}** unreadable.\\n"
    f"- Split taken from the {summary['split_source']}; seed {seed}.\\n"
    f"- **{summary['n_in_duplicate_groups']}** images in {summary['n_duplicate_groups']} duplicate groups; "
    f"**{summary['n_test_leaked']}** test images ({leak_share:.0%}) have a copy in training.\\n"
    f"- Written: `manifest.csv`, `eda_summary.json` and the image cache in the run directory."
))"""),
md("""## What's next
Chapter 02 trains a GAN on the training split to synthesise extra images per class; chapter 03
trains the classifier. Both read `manifest.csv` and the image cache written here.

## Resources
- Bhuvaji et al., *Brain Tumor Classification (MRI)*, Kaggle dataset.
- Zauner, *Implementation and Benchmarking of Perceptual Image Hash Functions* (2010): pHash.
- van der Maaten and Hinton, *Visualizing Data using t-SNE*, JMLR 2008."""),
]
nb = nbf.v4.new_notebook(cells=cells)
nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
               "language_info": {"name": "python"}}
nbf.write(nb, "notebooks/01_eda.ipynb")
