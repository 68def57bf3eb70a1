"""Make the reference fixture of the public MobileI2V denoiser, by hand; the tests only read its output.

    python tests/reference/make_upstream_reference.py --upstream PATH_TO_MobileI2V [--paper-size]

It builds the public `Mobiledit_300M_P1_D16` from a local copy of its source (hustvl/MobileI2V, made from
commit 7bd4d0631657e43b828edfbea6adaf0fbbe8dee1) at a small width on the paper's latent grid (3 x 23 x 40,
the only grid the public code runs on), gives every parameter seeded random values, runs it in float32 on
the CPU, and writes its state_dict, inputs and output to `upstream_mobiledit_small.pt` beside this file.
`tests/models/test_upstream_parity.py` loads that state_dict (`load_fixture`) through our checkpoint importer
and checks both
of our forms (training and mobile) against the output. With `--paper-size` it instead builds the full
1152-wide model, compares ours with it at once, prints the error and writes nothing (too large to commit).

What runs is the public code's own modules (`diffusion/model/nets/mobiledit.py`, `sana_blocks.py`,
`rope.py`, `basic_modules.py`, `diffusion/model/norms.py`, `utils.py`, `act.py`) and timm's Attention and
Mlp, with two changes that touch no forward pass and one that does:
- modules the forward never reaches are stubbed: torchvision, transformers and mmcv (imported at module
  level), the model registry, the logger, the distributed helpers and the package `__init__`s;
- timm's own `torchvision` imports are stubbed the same way (timm 1.0.20; install it and einops 0.8.1 with
  `pip install --no-deps timm==1.0.20 einops==0.8.1` into any environment beside this project's);
- in the softmax attention, `attn = self.attn_drop(attn).half()` (sana_blocks.py) becomes
  `.to(v.dtype)`: in float32 the unpatched line fails with "expected scalar type Float but found Half".
  It is a precision cast (fp16 probabilities under the public code's fp16 training), not part of the
  function.

The weights are seeded random values rounded to float16 (`seeded_weights`); the fixture stores their names,
shapes and seed, and `load_fixture` makes them again, so it is 0.4 MB instead of 6 MB. Both sides compute in
float32 on those same values.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path

import torch

FIXTURE = Path(__file__).with_name("upstream_mobiledit_small.pt")
UPSTREAM_COMMIT = "7bd4d0631657e43b828edfbea6adaf0fbbe8dee1"
GRID = (3, 23, 40)  # frames, height, width: 2760 tokens, the public code's fixed grid
SMALL = {"hidden_size": 144, "num_heads": 2, "mlp_ratio": 1.0, "in_channels": 8, "caption_channels": 16}
PAPER = {"hidden_size": 1152, "num_heads": 16, "mlp_ratio": 2.5, "in_channels": 128, "caption_channels": 896}
STUBBED = {"torchvision", "transformers", "mmcv", "termcolor", "pytz"}


class _StubMeta(type):
    """Any attribute of a stub is another stub class, made once per name (so they can be dict keys)."""

    def __getattr__(cls, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        sub = _StubMeta(name, (cls,), {})
        setattr(cls, name, sub)
        return sub


class _Stub(metaclass=_StubMeta):
    def __init__(self, *args, **kwargs) -> None:
        pass


class _StubModule(types.ModuleType):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__path__: list[str] = []  # a package, so that submodules import too

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        sub = _StubMeta(name, (_Stub,), {})
        setattr(self, name, sub)
        return sub


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in STUBBED:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _StubModule(spec.name)

    def exec_module(self, module) -> None:
        pass


def _package(name: str, folder: Path) -> None:
    module = types.ModuleType(name)
    module.__path__ = [str(folder)]
    sys.modules[name] = module


def _module(name: str, **attributes) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module


class _Registry:
    def register_module(self, *args, **kwargs):
        return (lambda obj: obj) if not args else args[0]


def load_upstream(upstream: Path) -> types.ModuleType:
    """The public `diffusion.model.nets.mobiledit` module, imported from `upstream` with the stubs above."""
    sys.meta_path.insert(0, _StubFinder())
    root = upstream / "diffusion"
    _package("diffusion", root)
    _package("diffusion.model", root / "model")
    _package("diffusion.model.nets", root / "model" / "nets")
    _package("diffusion.utils", root / "utils")
    _module("diffusion.model.builder", MODELS=_Registry())
    _module("diffusion.utils.dist_utils", get_rank=lambda: 0)
    _module("diffusion.utils.logger", get_root_logger=lambda *args, **kwargs: None)
    _module(
        "diffusion.utils.import_utils",
        is_xformers_available=lambda: False,
        is_triton_module_available=lambda: False,
    )
    blocks_file = root / "model" / "nets" / "sana_blocks.py"
    source = blocks_file.read_text()
    half = "attn = self.attn_drop(attn).half()"
    if source.count(half) != 1:
        raise RuntimeError(
            f"{blocks_file}: expected the line {half!r} once; is this commit {UPSTREAM_COMMIT}?"
        )
    spec = importlib.util.spec_from_file_location("diffusion.model.nets.sana_blocks", blocks_file)
    blocks = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = blocks
    exec(
        compile(source.replace(half, "attn = self.attn_drop(attn).to(v.dtype)"), str(blocks_file), "exec"),
        blocks.__dict__,
    )
    return importlib.import_module("diffusion.model.nets.mobiledit")


def build_upstream(mobiledit: types.ModuleType, size: dict) -> torch.nn.Module:
    """`Mobiledit_300M_P1_D16` with the kwargs of the public config (configs/mobilei2v_config) and
    inference script, at `size`."""
    return mobiledit.Mobiledit(
        input_height=GRID[1],
        input_width=GRID[2],
        patch_size=1,
        in_channels=size["in_channels"],
        hidden_size=size["hidden_size"],
        depth=16,
        num_heads=size["num_heads"],
        mlp_ratio=size["mlp_ratio"],
        pred_sigma=False,
        caption_channels=size["caption_channels"],
        model_max_length=4,
        qk_norm=True,
        y_norm=True,
        y_norm_scale_factor=0.01,
        attn_type="linear",
        ffn_type="glumbconv",
        mlp_acts=("silu", "silu", None),
        use_pe=False,
        linear_head_dim=32,
    ).eval()


def seeded_weights(shapes: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    """Seeded values for parameters of these names and shapes, in this order, at scales that keep
    activations O(1), rounded to float16 and held in float32. Deterministic, so the fixture stores only
    the names, the shapes and the seed, not 3M values."""
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in shapes.items():
        noise = torch.randn(shape, generator=generator)
        if len(shape) >= 2 and "scale_shift_table" not in name:
            value = noise * noise[0].numel() ** -0.5  # 1 / sqrt(fan in)
        elif name.endswith("norm.weight"):
            value = 1 + 0.1 * noise
        else:  # biases and the modulation tables
            value = 0.1 * noise
        weights[name] = value.half().float()
    return weights


def load_fixture(path: Path = FIXTURE) -> dict:
    """The fixture with its public state_dict (the parameters; the buffers are ignored on import anyway)
    made again from the stored shapes and seed."""
    fixture = torch.load(path, map_location="cpu", weights_only=True)
    return fixture | {"state_dict": seeded_weights(fixture["parameter_shapes"], fixture["seed"])}


def example_inputs(size: dict, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """The public forward's inputs: latents, timesteps on its 0-1000 scale, the first frame marked clean,
    motion scores, and a caption embedding that no block reads."""
    generator = torch.Generator().manual_seed(seed)
    frames, height, width = GRID
    cond_mask = torch.zeros(batch, frames * height * width)
    cond_mask[:, : height * width] = 1.0  # latent frame 0 is the clean image
    return {
        "latents": torch.randn(batch, size["in_channels"], frames, height, width, generator=generator),
        "timestep": torch.tensor([700.0, 250.0])[:batch],
        "flow_score": torch.tensor([2.0, 5.0])[:batch],
        "cond_mask": cond_mask,
        "caption": torch.randn(batch, 1, 4, size["caption_channels"], generator=generator),
    }


@torch.no_grad()
def run_upstream(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    latents = inputs["latents"]
    return model(
        latents,
        inputs["timestep"],
        latents[:, :, :1],  # guide_image: unused by the public forward
        inputs["caption"],
        inputs["cond_mask"],
        inputs["flow_score"],
    )


def our_inputs(inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same call in our convention: flow time in [0, 1] per latent frame, frame 0 at 0."""
    timesteps = (inputs["timestep"] / 1000).unsqueeze(1).repeat(1, GRID[0])
    timesteps[:, 0] = 0.0
    return inputs["latents"], timesteps, inputs["flow_score"]


@torch.no_grad()
def compare_with_ours(state_dict: dict[str, torch.Tensor], inputs: dict, expected: torch.Tensor, size: dict):
    """Max abs error of our training and mobile forms against the public output, through the importer."""
    from mobilei2v_pipeline.models.checkpoint_import import convert_public_state_dict
    from mobilei2v_pipeline.models.config import DenoiserConfig, LatentGrid
    from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
    from mobilei2v_pipeline.models.mobile_denoiser import MobileDenoiser

    config = DenoiserConfig(
        latent_channels=size["in_channels"],
        hidden_size=size["hidden_size"],
        num_heads=size["num_heads"],
        ffn_ratio=size["mlp_ratio"],
    )
    model = MobileI2VDenoiser(config).eval()
    model.load_state_dict(convert_public_state_dict(state_dict, model))
    args = our_inputs(inputs)
    training = float((model(*args) - expected).abs().max())
    mobile = float((MobileDenoiser(model, LatentGrid(*GRID))(*args) - expected).abs().max())
    return training, mobile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", type=Path, required=True, help="a local copy of hustvl/MobileI2V")
    parser.add_argument("--paper-size", action="store_true", help="compare at 1152 wide; write nothing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    size = PAPER if args.paper_size else SMALL
    mobiledit = load_upstream(args.upstream.resolve())
    model = build_upstream(mobiledit, size)
    shapes = {name: list(p.shape) for name, p in model.named_parameters()}
    model.load_state_dict(seeded_weights(shapes, args.seed), strict=False)
    inputs = example_inputs(size, batch=1 if args.paper_size else 2, seed=args.seed + 1)
    output = run_upstream(model, inputs)
    state_dict = dict(model.named_parameters())
    training, mobile = compare_with_ours(state_dict, inputs, output, size)
    print(
        f"{'paper' if args.paper_size else 'small'} size ({size['hidden_size']} wide, "
        f"{size['num_heads']} heads), "
        f"grid {GRID}: output max abs {float(output.abs().max()):.3f}; ours, max abs error: "
        f"training form {training:.2e}, mobile form {mobile:.2e}"
    )
    if args.paper_size:
        return
    torch.save(
        {
            "upstream_commit": UPSTREAM_COMMIT,
            "size": size,
            "parameter_shapes": shapes,
            "seed": args.seed,
            "inputs": inputs,
            "output": output,
        },
        FIXTURE,
    )
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
