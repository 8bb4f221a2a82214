"""Built-in data, the resumable data order, and VAE latent shards with a tiny random AutoencoderKL."""
import numpy as np
import pytest
import torch

from suite.config import DataConfig
from suite.data import ResumableSampler, build_dataset
from suite.errors import MissingFileError


def test_builtin_datasets_are_deterministic_and_split():
    for name in ("digits", "shapes"):
        cfg = DataConfig(name=name, image_size=16, num_images=300)
        train, test = build_dataset(cfg, "train"), build_dataset(cfg, "test")
        assert train.num_classes >= 10
        a, b = build_dataset(cfg, "train")[5], train[5]
        torch.testing.assert_close(a["x0"], b["x0"])
        assert a["x0"].min() >= -1 and a["x0"].max() <= 1 and a["pixels"].shape[0] == 3
        ids_train = {tuple(train[i]["x0"].flatten()[:20].tolist()) for i in range(len(train))}
        assert not any(tuple(test[i]["x0"].flatten()[:20].tolist()) in ids_train for i in range(20))


def test_shapes_classes_are_distinguishable():
    imgs = build_dataset(DataConfig(name="shapes", image_size=16, num_images=400, test_fraction=0), "all")
    x = torch.stack([imgs[i]["x0"] for i in range(400)])
    y = torch.tensor([imgs[i]["y"] for i in range(400)])
    assert len(set(y.tolist())) == 10
    red, blue = x[y < 5], x[y >= 5]  # colour halves differ on average in the red and blue channels
    assert (red[:, 0].mean() - red[:, 2].mean()) > 0.1 and (blue[:, 2].mean() - blue[:, 0].mean()) > 0.1


@pytest.mark.parametrize("world", [1, 2])
def test_resumable_sampler_continues_the_same_stream(world):
    full = [list(_take(ResumableSampler(50, seed=3, rank=r, world_size=world), 100)) for r in range(world)]
    for r in range(world):
        resumed = list(_take(ResumableSampler(50, seed=3, start=40, rank=r, world_size=world), 40))
        assert resumed == full[r][40 // world: 40 // world + 40]
    merged = sorted(i for r in range(world) for i in full[r][: 50 // world])
    assert merged == list(range(50))  # one epoch, every example exactly once across ranks


def _take(it, n):
    for _, x in zip(range(n), it):
        yield x


def test_latent_shards_with_a_tiny_random_vae(tmp_path):
    from diffusers import AutoencoderKL
    from PIL import Image

    from suite.data.latents import encode_dataset, load_vae

    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), block_out_channels=(8, 16),
                        latent_channels=4, norm_num_groups=4, sample_size=16)
    vae.save_pretrained(tmp_path / "vae")
    for c in range(2):
        (tmp_path / "imgs" / f"class{c}").mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.random.default_rng(i + 10 * c).integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"class{c}" / f"{i}.png")
    folder = build_dataset(DataConfig(name="folder", root=str(tmp_path / "imgs"), image_size=16, test_fraction=0), "all")
    n = encode_dataset(folder, load_vae(str(tmp_path / "vae")), str(tmp_path / "lat"), shard_size=4, batch_size=3)
    assert n == 10 and len(list((tmp_path / "lat").glob("shard-*.pt"))) >= 2
    lat = build_dataset(DataConfig(name="latents", root=str(tmp_path / "lat"), test_fraction=0), "all")
    item = lat[7]
    assert item["x0"].shape == (4, 8, 8) and lat.num_classes == 2
    torch.testing.assert_close(item["pixels"], folder[7]["pixels"], atol=1 / 127.5, rtol=0)  # raw pixels ride along
    with pytest.raises(Exception, match="data.vae"):
        lat.to_pixels(item["x0"][None])
    decoded = build_dataset(DataConfig(name="latents", root=str(tmp_path / "lat"), vae=str(tmp_path / "vae")), "train").to_pixels(item["x0"][None])
    assert decoded.shape == (1, 3, 16, 16) and decoded.abs().max() <= 1  # samples decode for image metrics


def test_missing_data_and_weights_name_the_file(tmp_path):
    from suite.data.latents import load_vae

    with pytest.raises(MissingFileError, match="config.json"):
        load_vae(str(tmp_path / "nope"))
    with pytest.raises(MissingFileError, match="no latent shards"):
        build_dataset(DataConfig(name="latents", root=str(tmp_path)), "train")
    with pytest.raises(MissingFileError, match="image folder not found"):
        build_dataset(DataConfig(name="folder", root=str(tmp_path / "x")), "train")
