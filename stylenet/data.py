"""Training photos: datasets and the LightningDataModule (coco, folder, sample).

Unreadable files are skipped (counted and logged) so one bad file never stops training.
"""

from __future__ import annotations

import logging
import random
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from stylenet.images import IMAGE_SUFFIXES, ImageError, load_pil, to_tensor

log = logging.getLogger(__name__)
SAMPLE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "hubble_deep_field.jpg",
)


def find_images(root: str | Path) -> list[Path]:
    """Image files under root, recursively, in a stable order."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data.root={str(root)!r} is not a folder")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def sample_photos() -> list[Path]:
    """The real photos shipped inside scikit-image's wheel (works offline)."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    return [folder / name for name in SAMPLE_PHOTOS if (folder / name).is_file()]


def split_holdout(files: Sequence[Path], n_val: int) -> tuple[list[Path], list[Path]]:
    """A fixed validation subset chosen by a hash of the file name (stable as folders grow)."""
    ranked = sorted(files, key=lambda p: zlib.crc32(p.name.encode()))
    val = set(ranked[:n_val]) if len(files) > n_val else set()
    return [p for p in files if p not in val], [p for p in files if p in val]


def resize_crop(img: Image.Image, size: int, rng: random.Random | None) -> Image.Image:
    """Scale the short side to size (random up to 1.25x when training) and crop size x size."""
    scale = size / min(img.size) * (rng.uniform(1.0, 1.25) if rng else 1.0)
    w, h = max(size, round(img.width * scale)), max(size, round(img.height * scale))
    img = img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if rng:
        x, y = rng.randint(0, w - size), rng.randint(0, h - size)
    else:
        x, y = (w - size) // 2, (h - size) // 2
    img = img.crop((x, y, x + size, y + size))
    if rng and rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return img


class PhotoDataset(Dataset):
    """Random (train) or centre (val) square crops of photos; a bad file is replaced by another.

    `length` lets a small folder fill a long epoch (indices wrap around).
    """

    def __init__(
        self, files: Sequence[Path], image_size: int, train: bool = True, length: int | None = None
    ):
        if not files:
            raise ValueError("no images to train on")
        self.files = list(files)
        self.image_size = image_size
        self.train = train
        self.length = length or len(self.files)
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = random.Random(torch.initial_seed() + index) if self.train else None
        for attempt in range(len(self.files)):
            i = (index + attempt) % len(self.files)
            if i in self.bad:
                continue
            try:
                return to_tensor(resize_crop(load_pil(self.files[i]), self.image_size, rng))
            except ImageError as e:
                self.bad.add(i)
                log.warning("skipping %s (%d bad file(s) so far in this worker)", e, len(self.bad))
        raise RuntimeError("none of the training images could be read")


class PhotoDataModule(pl.LightningDataModule):
    """`source` is 'coco' or 'folder' (images under root) or 'sample' (scikit-image photos)."""

    def __init__(
        self,
        source: str = "sample",
        root: str | None = None,
        image_size: int = 256,
        batch_size: int = 4,
        num_workers: int = 2,
        val_images: int = 4,
        epoch_length: int = 2000,
    ):
        super().__init__()
        self.source, self.root = source, root
        self.image_size, self.batch_size = image_size, batch_size
        self.num_workers, self.val_images, self.epoch_length = num_workers, val_images, epoch_length
        self.train_files: list[Path] = []
        self.val_files: list[Path] = []

    def files(self) -> list[Path]:
        if self.source == "sample":
            return sample_photos()
        if self.source in ("coco", "folder"):
            if not self.root:
                raise ValueError(f"data={self.source} needs data.root=<folder of images>")
            files = find_images(self.root)
            if not files:
                raise FileNotFoundError(f"data.root={self.root!r} holds no jpg/png/webp/bmp images")
            return files
        raise ValueError(f"unknown data source {self.source!r} (coco, folder or sample)")

    def setup(self, stage: str | None = None) -> None:
        if not self.train_files:
            n_val = 2 if self.source == "sample" else self.val_images
            self.train_files, self.val_files = split_holdout(self.files(), n_val)
            log.info(
                "%d training photos, %d validation photos",
                len(self.train_files),
                len(self.val_files),
            )

    def train_dataloader(self) -> DataLoader:
        length = max(len(self.train_files), self.epoch_length)
        ds = PhotoDataset(self.train_files, self.image_size, train=True, length=length)
        return DataLoader(
            ds,
            self.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def val_dataloader(self) -> DataLoader:
        files = self.val_files or self.train_files[:2]
        ds = PhotoDataset(files, self.image_size, train=False)
        return DataLoader(ds, batch_size=len(files), num_workers=0)
