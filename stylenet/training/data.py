"""Training photos: datasets and the LightningDataModule (coco, folder, sample).

Unreadable files are skipped (counted and logged) so one bad file never stops training.
"""

from __future__ import annotations

import fnmatch
import logging
import random
import signal
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from stylenet.files.images import ImageError, find_images, load_pil, to_tensor

log = logging.getLogger(__name__)


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C and SIGTERM to the main process, which finishes its step
    and saves last.ckpt: a terminal or a scheduler signals the whole process group, and a worker
    killed by it would end training with an error before anything is saved."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


class NoImagesError(RuntimeError):
    """Not one usable image was found."""


SAMPLE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "hubble_deep_field.jpg",
)


def sample_photos() -> list[Path]:
    """The real photos shipped inside scikit-image's wheel (works offline)."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    return [folder / name for name in SAMPLE_PHOTOS if (folder / name).is_file()]


def split_holdout(files: Sequence[Path], n_val: int) -> tuple[list[Path], list[Path]]:
    """(train, val): a fixed validation subset chosen by a hash of the file name (stable as
    folders grow).

    Small folders keep most photos for training: at most n_val and at most a third of the files
    (rounded down) are held out, but at least one whenever n_val >= 1 and there are two files or
    more. So the 7 sample photos give 2 for validation (a third, not a quarter: the first photo
    by hash is the Hubble deep field, useless alone for judging a style), 12 files at most 4.
    n_val=0 or a single file holds nothing out (the data module then validates on training
    photos).
    """
    n_val = min(n_val, max(1, len(files) // 3), len(files) - 1) if n_val > 0 else 0
    ranked = sorted(files, key=lambda p: zlib.crc32(p.name.encode()))
    val = set(ranked[:n_val])
    return [p for p in files if p not in val], [p for p in files if p in val]


def resize_crop(img: Image.Image, size: int, rng: random.Random | None) -> Image.Image:
    """A square of the short side (random, up to 1.25x zoomed in, when training) resized to size.

    Cropping before resizing keeps the cost bounded for tiny or very elongated images.
    """
    side = min(img.size) / (rng.uniform(1.0, 1.25) if rng else 1.0)
    if rng:
        x, y = rng.uniform(0, img.width - side), rng.uniform(0, img.height - side)
    else:
        x, y = (img.width - side) / 2, (img.height - side) / 2
    img = img.resize(
        (size, size), Image.Resampling.BILINEAR, box=(x, y, x + side, y + side), reducing_gap=2.0
    )
    if rng and rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return img


class PhotoDataset(Dataset):
    """Random (train) or centre (val) square crops of photos; a bad file is replaced by the next.

    Index k reads file k % len(files); the training crop is a function of (seed, k) only, so the
    same indices give the same batches in any worker, run or resumed run. Files found unreadable
    are flagged in a shared-memory mask that all workers and the main process see.
    """

    def __init__(
        self,
        files: Sequence[Path],
        image_size: int,
        train: bool = True,
        length: int | None = None,
        seed: int = 0,
    ):
        if not files:
            raise ValueError("no images to train on")
        self.files = list(files)
        self.image_size = image_size
        self.train = train
        self.length = length or len(self.files)
        self.seed = seed
        self.bad = torch.zeros(len(self.files), dtype=torch.bool).share_memory_()

    def __len__(self) -> int:
        return self.length

    def skipped(self) -> list[Path]:
        return [self.files[i] for i in self.bad.nonzero().flatten().tolist()]

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = random.Random(f"{self.seed}:{index}") if self.train else None
        for attempt in range(len(self.files)):
            i = (index + attempt) % len(self.files)
            if self.bad[i]:
                continue
            try:
                return to_tensor(resize_crop(load_pil(self.files[i]), self.image_size, rng))
            except ImageError as e:
                self.bad[i] = True
                n = int(self.bad.sum())
                log.warning("skipping %s (%d unreadable file(s) skipped so far)", e, n)
        raise NoImagesError(f"none of the {len(self.files)} images could be read")


class StepSampler(Sampler[int]):
    """Shuffled passes over n files, a pure function of (seed, position); each pass starts at
    position start() so a resumed run draws exactly the batches the interrupted one would have.

    Yields dataset indices (pass * n + file), so every pass gets fresh crops.
    """

    def __init__(self, n: int, length: int, seed: int = 0, start: Callable[[], int] = lambda: 0):
        self.n, self.length, self.seed, self.start = n, length, seed, start

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        first = self.start()
        epoch, perm = -1, torch.empty(0, dtype=torch.long)
        for pos in range(first, first + self.length):
            if pos // self.n != epoch:
                epoch = pos // self.n
                gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                perm = torch.randperm(self.n, generator=gen)
            yield epoch * self.n + int(perm[pos % self.n])


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
        seed: int = 0,
        exclude: Sequence[str] = (),
    ):
        super().__init__()
        self.seed, self.exclude = seed, list(exclude)
        self.train_set: PhotoDataset | None = None
        self.bad_val: list[Path] = []
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
            files = find_artworks([self.root], self.exclude)
            if not files:
                raise FileNotFoundError(
                    f"data.root={self.root!r} holds no jpg/png/webp/bmp images outside "
                    f"data.exclude={self.exclude}"
                )
            return files
        raise ValueError(f"unknown data source {self.source!r} (coco, folder or sample)")

    def setup(self, stage: str | None = None) -> None:
        if not self.train_files:
            self.train_files, val_files = split_holdout(self.files(), self.val_images)
            # a few files: check them now so validation never trips over a bad one
            self.val_files = [p for p in val_files if _usable(p)]
            self.bad_val = [p for p in val_files if p not in self.val_files]
            if not self.val_files:
                self.val_files = [p for p in self.train_files[:8] if _usable(p, warn=False)][:2]
            log.info(
                "%d training photos, %d validation photos",
                len(self.train_files),
                len(self.val_files),
            )

    def _position(self) -> int:
        """Training samples drawn so far (restored from last.ckpt when resuming)."""
        t = self.trainer
        if t is None:
            return 0
        return t.global_step * t.accumulate_grad_batches * self.batch_size * t.world_size

    def skipped(self) -> list[Path]:
        """Files found unreadable so far (they are left out)."""
        return self.bad_val + (self.train_set.skipped() if self.train_set is not None else [])

    def train_dataloader(self) -> DataLoader:
        length = max(len(self.train_files), self.epoch_length)
        ds = PhotoDataset(self.train_files, self.image_size, True, length, self.seed)
        self.train_set = ds
        return DataLoader(
            ds,
            self.batch_size,
            sampler=StepSampler(len(self.train_files), length, self.seed, self._position),
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=ignore_stop_signals,
            pin_memory=torch.cuda.is_available(),
        )

    def val_dataloader(self) -> DataLoader:
        if not self.val_files:
            raise NoImagesError("no readable validation images")
        ds = PhotoDataset(self.val_files, self.image_size, train=False)
        return DataLoader(ds, batch_size=len(self.val_files), num_workers=0)


def _usable(path: Path, warn: bool = True) -> bool:
    try:
        load_pil(path)
        return True
    except ImageError as e:
        if warn:
            log.warning("skipping %s", e)
        return False


def find_artworks(roots: Sequence[str | Path], exclude: Sequence[str] = ()) -> list[Path]:
    """Image files under each root (recursive), minus names matching an `exclude` glob pattern."""
    files = [p for root in roots for p in find_images(root)]
    return [p for p in files if not any(fnmatch.fnmatch(p.name, pat) for pat in exclude)]


class PairDataset(Dataset):
    """(photo, artwork) pairs for AdaIN: index k gives photo k and a pseudo-random artwork crop,
    both functions of (seed, k) only, so a resumed run sees the same pairs."""

    def __init__(self, photos: PhotoDataset, artworks: PhotoDataset, shuffle: bool = True):
        self.photos, self.artworks, self.shuffle = photos, artworks, shuffle

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = zlib.crc32(f"{self.photos.seed}:art:{index}".encode()) if self.shuffle else index
        return self.photos[index], self.artworks[k]


class PairDataModule(PhotoDataModule):
    """Photos as PhotoDataModule (coco, folder, sample) paired with artworks from `style_files`.

    Artworks are cropped like the photos (a random square of the short side, resized to
    `style_image_size`); unreadable ones are skipped and reported the same way. Validation pairs
    each validation photo with one of the first `val_styles` artworks in turn.
    """

    def __init__(
        self,
        style_files: Sequence[Path],
        style_image_size: int = 256,
        val_styles: int = 2,
        **photo_args,
    ):
        super().__init__(**photo_args)
        if not style_files:
            raise NoImagesError("no artworks to train on (style_data.root)")
        self.style_files = list(style_files)
        self.style_image_size, self.val_styles = style_image_size, val_styles
        self.art_set: PhotoDataset | None = None

    def skipped(self) -> list[Path]:
        return super().skipped() + (self.art_set.skipped() if self.art_set is not None else [])

    def train_dataloader(self) -> DataLoader:
        photos = super().train_dataloader()
        arts = PhotoDataset(self.style_files, self.style_image_size, True, seed=self.seed + 1)
        self.art_set = arts
        return DataLoader(
            PairDataset(photos.dataset, arts),
            self.batch_size,
            sampler=photos.sampler,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=ignore_stop_signals,
            pin_memory=torch.cuda.is_available(),
        )

    def val_dataloader(self) -> DataLoader:
        photos = super().val_dataloader().dataset
        ranked = sorted(self.style_files, key=lambda p: zlib.crc32(p.name.encode()))
        usable = [p for p in ranked if _usable(p, warn=False)][: max(1, self.val_styles)]
        if not usable:
            raise NoImagesError("no readable artworks for validation")
        files = [usable[i % len(usable)] for i in range(len(photos))]
        arts = PhotoDataset(files, self.style_image_size, train=False)
        return DataLoader(PairDataset(photos, arts, shuffle=False), batch_size=len(photos))
