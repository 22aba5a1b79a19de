"""Scenario schema (pydantic), safe YAML loading with line numbers, and one-line errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from simulator.errors import ScenarioError

SIMILARITIES = ("cosine", "euclidean", "l1", "linf")
METHODS = ("absolute", "relative", "procrustes", "affine", "inverse-relative")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, values: Any) -> Any:
        # NaN and inf make no sense for any quantity in a scenario.
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, float) and not math.isfinite(value):
                    raise _Located(f"must be a finite number, got {value}", (key,))
        return values


PositiveInt = Annotated[int, Field(gt=0)]


class DataConfig(_Strict):
    """Which dataset, and how its official training set is split."""

    dataset: Literal["fashion-mnist", "digits"] = "fashion-mnist"
    validation_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    split_seed: int = Field(0, ge=0, description="seed of the train/validation split (kept apart from "
                            "the scenario seed so that seed replicates share trained encoders)")


class TrainConfig(_Strict):
    """Training budget of an encoder (as a classifier with a cosine head) or a receiver head."""

    epochs: PositiveInt = 4
    batch_size: PositiveInt = 256
    lr: float = Field(2e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0)
    subset: PositiveInt | None = Field(
        None, description="train on this many samples of the training split (drawn from the "
        "encoder's own seed) instead of all of it")


class EncoderConfig(_Strict):
    """One independently trained encoder. Its ``seed`` alone decides its initialisation and data order."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    arch: Literal["mlp", "cnn"]
    latent_dim: int = Field(64, ge=2, le=4096)
    hidden: tuple[PositiveInt, ...] = Field(
        (512, 256), description="mlp: widths of the hidden layers; cnn: channels of the conv blocks")
    seed: int = Field(0, ge=0)
    train: TrainConfig = TrainConfig()


class AnchorConfig(_Strict):
    """The shared, ordered anchor list: dataset indices from the training split."""

    strategy: Literal["random", "stratified", "kmeans", "farthest"] = "random"
    count: int = Field(512, ge=1, le=20000, description="length of the list; K options are prefixes")
    seed: int = Field(0, ge=0)


class RelativeConfig(_Strict):
    """How a latent vector becomes a relative representation."""

    similarity: tuple[Literal["cosine", "euclidean", "l1", "linf"], ...] = Field(
        ("cosine",), min_length=1, description="one similarity, or several for a product space")
    center: bool = Field(False, description="subtract the anchor mean in each latent space first")

    @field_validator("similarity", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("similarity")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("similarities must be distinct")
        return value

    @property
    def label(self) -> str:
        return "+".join(self.similarity) + ("-centered" if self.center else "")


class HeadConfig(_Strict):
    """Receiver task heads on relative representations (one per anchor count)."""

    hidden: int = Field(256, ge=1)
    train: TrainConfig = TrainConfig(epochs=6, lr=2e-3)


class PathLossConfig(_Strict):
    """Large-scale loss: log-distance PL(d) = PL(d0) + 10·n·log10(d/d0) dB, or a fixed loss."""

    model: Literal["log-distance", "fixed"] = "log-distance"
    reference_loss_db: float = Field(30.0, ge=0.0, le=200.0, description="loss at the reference distance")
    reference_distance_m: float = Field(1.0, gt=0.0)
    exponent: float = Field(3.0, gt=0.0, le=10.0)
    loss_db: float = Field(100.0, ge=0.0, le=300.0, description="model 'fixed': the loss, whatever the distance")


class LinkConfig(_Strict):
    """Per-link settings (a transmitter's link to its receiver)."""

    distance_m: float = Field(100.0, gt=0.0)
    fading: Literal["none", "rayleigh", "rician", "nakagami"] = "rayleigh"
    k_factor: float = Field(0.0, ge=0.0, le=1e4, description="Rician K (linear, LOS to scattered power)")
    nakagami_m: float = Field(1.0, ge=0.5, le=100.0)
    doppler_hz: float = Field(0.0, ge=0.0, le=1e5, description="0: block fading i.i.d. per slot; "
                              "> 0: AR(1) with the Jakes correlation J0(2π f_D slot_s)")
    shadowing_sigma_db: float = Field(0.0, ge=0.0, le=30.0)
    bandwidth_share: float | None = Field(None, gt=0.0, le=1.0, description="share of the receiver's "
                                          "bandwidth; empty = equal split among its transmitters")


class ChannelConfig(_Strict):
    """The wireless medium and how a payload crosses it."""

    noise_psd_dbm_hz: float = Field(-174.0, ge=-250.0, le=0.0)
    bandwidth_hz: float = Field(1e6, gt=0.0, le=1e11, description="per receiver, shared by its transmitters")
    snr_gap_db: float = Field(0.0, ge=0.0, le=30.0, description="SNR gap Γ of practical coding (0 = Shannon)")
    path_loss: PathLossConfig = PathLossConfig()
    mode: Literal["ideal", "digital", "analog"] = Field(
        "digital", description="ideal: error-free; digital: quantized bits, uncoded bit errors at the "
        "modulation's BER; analog: similarities as real symbols with AWGN")
    modulation: Literal["bpsk", "qpsk", "16qam"] = "qpsk"
    header_bits: int = Field(64, ge=0, le=1 << 20)
    link: LinkConfig = Field(LinkConfig(), description="default link settings")


class StitchConfig(_Strict):
    """The alignment-under-mismatch matrix, and accuracy through quantization and noise."""

    anchors: tuple[PositiveInt, ...] = (16, 32, 64, 128, 256, 512)
    methods: tuple[Literal["absolute", "relative", "procrustes", "affine", "inverse-relative"], ...] = METHODS
    ridge: float = Field(0.1, ge=0.0, le=100.0, description="ridge strength α of the affine and "
                         "inverse-relative fits, relative to the mean Gram eigenvalue (0 = plain least squares)")
    calibrate: bool = Field(True, description="also write the calibration table on the validation split")
    bits: tuple[int, ...] = Field((1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 32),
                                  description="bits per entry for the accuracy-vs-bits curve and Ĝ (32 = float32)")
    snr_db: tuple[float, ...] = Field((-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0),
                                      description="SNR grid for the accuracy-vs-SNR curves and Ĝ")
    noisy_bits: int = Field(8, description="bits per entry in digital runs over the SNR grid")
    curve_anchors: int | None = Field(None, description="K of the bits and SNR curves "
                                      "(default: the largest anchor count ≤ 256)")

    @field_validator("bits")
    @classmethod
    def _bits_ok(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for b in value:
            if not (1 <= b <= 16 or b == 32):
                raise ValueError(f"bits must be in 1..16 or 32 (float32), got {b}")
        return tuple(sorted(set(value)))

    @field_validator("noisy_bits")
    @classmethod
    def _noisy_bits_ok(cls, value: int) -> int:
        if not (1 <= value <= 16 or value == 32):
            raise ValueError(f"must be in 1..16 or 32 (float32), got {value}")
        return value

    @field_validator("anchors")
    @classmethod
    def _sorted_unique(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(value)) != len(value):
            raise ValueError("anchor counts must be distinct")
        return tuple(sorted(value))


class Scenario(_Strict):
    """A complete scenario file."""

    name: str = Field("scenario", min_length=1, max_length=128)
    seed: int = Field(0, ge=0, description="root of the seed tree")
    device: Literal["cpu", "auto", "cuda"] = Field("cpu", description="torch device; auto = CUDA when present")
    data: DataConfig = DataConfig()
    encoders: tuple[EncoderConfig, ...] = Field(min_length=1)
    anchors: AnchorConfig = AnchorConfig()
    relative: RelativeConfig = RelativeConfig()
    heads: HeadConfig = HeadConfig()
    channel: ChannelConfig = ChannelConfig()
    stitching: StitchConfig = StitchConfig()

    @model_validator(mode="after")
    def _cross_fields(self) -> "Scenario":
        seen: set[str] = set()
        for i, enc in enumerate(self.encoders):
            if enc.id in seen:
                raise _Located(f"duplicate encoder id {enc.id!r}", ("encoders", i, "id"))
            seen.add(enc.id)
        for i, k in enumerate(self.stitching.anchors):
            if k > self.anchors.count:
                raise _Located(f"anchor count {k} exceeds the anchor list length "
                               f"anchors.count = {self.anchors.count}", ("stitching", "anchors", i))
        ca = self.stitching.curve_anchors
        if ca is not None and ca not in self.stitching.anchors:
            raise _Located(f"{ca} is not one of stitching.anchors", ("stitching", "curve_anchors"))
        return self

    def encoder(self, encoder_id: str) -> EncoderConfig:
        for enc in self.encoders:
            if enc.id == encoder_id:
                return enc
        raise KeyError(encoder_id)


class _Located(ValueError):
    """A cross-field error that knows the path of the field it blames."""

    def __init__(self, message: str, loc: tuple[str | int, ...]):
        super().__init__(message)
        self.loc = loc


# --------------------------------------------------------------------------- loading


def format_path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


MAX_SCENARIO_BYTES = 1 << 20


def read_yaml(path: str | Path) -> tuple[Any, yaml.Node | None]:
    """Read a YAML file safely (no Python tags); return the data and its node tree (for lines)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SCENARIO_BYTES:
            raise ScenarioError(f"file is larger than {MAX_SCENARIO_BYTES // 1024} KiB; not a scenario",
                                path=str(path))
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("file not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read file: {exc}", path=str(path)) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"invalid YAML: {problem}", path=str(path),
                            line=mark.line + 1 if mark else None) from None
    return data, node


def parse_scenario(data: Any, node: yaml.Node | None = None, source: str = "scenario") -> Scenario:
    """Validate a mapping as a :class:`Scenario`; errors become one-line :class:`ScenarioError`."""
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a YAML mapping at the top level", path=source)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err.get("loc", ()))
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _Located):
            loc = loc + ctx_error.loc
            message = str(ctx_error)
        else:
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            elif err["type"] == "missing":
                message = "required field is missing"
        raise ScenarioError(message, path=format_path(loc) or source, line=_line_of(node, loc)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file."""
    data, node = read_yaml(path)
    return parse_scenario(data, node, source=str(path))


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The resolved scenario as plain data (for ``scenario.yaml`` in results and for cache keys)."""
    return scenario.model_dump(mode="json")
