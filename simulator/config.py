"""Scenario schema (pydantic), safe YAML loading with line numbers, and one-line errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from simulator import yamlio
from simulator.control.kinds import KINDS as CONTROLLER_KINDS
from simulator.control.kinds import ControllerConfig
from simulator.control.registry import DEFAULT_KIND
from simulator.errors import ScenarioError, clipped, quoted
from simulator.latent.encoders import FAMILIES as ENCODER_FAMILIES
from simulator.latent.encoders import EncoderConfig
from simulator.overrides import (
    Override,
    apply_overrides,
    format_path,
    parse_override,
    parse_path,
)
from simulator.schema import Located, PositiveInt, Strict, TrainConfig

SIMILARITIES = ("cosine", "euclidean", "l1", "linf")
METHODS = ("absolute", "relative", "procrustes", "affine", "inverse-relative")


class DataConfig(Strict):
    """Which dataset, how its official sets are split, and which split calibrates Ĝ.

    The official training set splits into train (encoders, heads) and validation. With
    ``calibration: holdout`` the official test set also splits, into a holdout (Ĝ only) and the
    test split (tasks, stitching and retrieval rows): Ĝ is then measured on the test set's own
    distribution without touching the samples the run is judged on.
    """

    dataset: Literal["fashion-mnist", "digits", "rotten-tomatoes", "wordnet-supersenses"] = "fashion-mnist"
    validation_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    split_seed: int = Field(0, ge=0, description="seed of the train/validation and holdout/test splits (kept "
                            "apart from the scenario seed so that seed replicates share trained encoders)")
    max_train: PositiveInt | None = Field(None, description="keep only the first samples of the official "
                                          "training set (quick studies with large pretrained models)")
    max_test: PositiveInt | None = Field(None, description="keep only the first samples of the test set")
    calibration: Literal["validation", "holdout"] = Field(
        "validation", description="the split Ĝ (the calibration table) is measured on: validation (from the "
        "official training set) or holdout (a share of the official test set, kept out of the test split; "
        "validation accuracy can run above test accuracy when the two official sets differ)")
    holdout_fraction: float = Field(0.5, gt=0.0, lt=1.0, description="calibration holdout: share of the official "
                                    "test set held out for Ĝ (drawn with split_seed); the default halves it, which "
                                    "minimizes the sampling error of Ĝ against the test split")


class AnchorConfig(Strict):
    """The shared, ordered anchor list: dataset indices from the training split."""

    strategy: Literal["random", "stratified", "kmeans", "farthest"] = "random"
    count: int = Field(512, ge=1, le=20000, description="length of the list; K options are prefixes")
    seed: int = Field(0, ge=0)


class RelativeConfig(Strict):
    """How a latent vector becomes a relative representation."""

    similarity: tuple[Literal["cosine", "euclidean", "l1", "linf"], ...] = Field(
        ("cosine",), min_length=1, description="one similarity, or several for a product space")
    center: bool = Field(False, description="subtract the anchor mean in each latent space first")
    standardize: bool = Field(False, description="map latents to z-scores of the anchors (per dimension, in each "
                                                 "agent's own space) first; implies center")

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
        return "+".join(self.similarity) + ("-standardized" if self.standardize else "-centered" if self.center else "")

    @property
    def invertible(self) -> bool:
        """Whether the inverse-relative map applies: the cosine similarity alone, no z-scores."""
        return self.similarity == ("cosine",) and not self.standardize

    def cache_fields(self) -> dict[str, Any]:
        """The fields that determine relative vectors, for cache keys (``standardize`` only when on,
        so that keys made before the field existed stay valid)."""
        return self.model_dump(mode="json", exclude=set() if self.standardize else {"standardize"})


class HeadConfig(Strict):
    """Receiver task heads on relative representations (one per anchor count)."""

    hidden: int = Field(256, ge=1)
    train: TrainConfig = TrainConfig(epochs=6, lr=2e-3)


class PathLossConfig(Strict):
    """Large-scale loss: log-distance PL(d) = PL(d0) + 10·n·log10(d/d0) dB, or a fixed loss."""

    model: Literal["log-distance", "fixed"] = "log-distance"
    reference_loss_db: float = Field(30.0, ge=0.0, le=200.0, description="loss at the reference distance")
    reference_distance_m: float = Field(1.0, gt=0.0)
    exponent: float = Field(3.0, gt=0.0, le=10.0)
    loss_db: float = Field(100.0, ge=0.0, le=300.0, description="model 'fixed': the loss, whatever the distance")


class LinkConfig(Strict):
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


class ChannelConfig(Strict):
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


class StitchConfig(Strict):
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
    noisy_bits: tuple[int, ...] = Field((4, 8), min_length=1, description="bits per entry of the digital "
                                        "runs over the SNR grid (one curve and one Ĝ slice each)")
    curve_anchors: int | None = Field(None, description="K of the bits and SNR curves "
                                      "(default: the largest anchor count ≤ 256)")
    retrieval_candidates: int = Field(1000, ge=2, le=1_000_000, description="test samples of the retrieval "
                                      "measure (retrieval.csv): the first N in dataset order, capped at the test size")

    @field_validator("bits", "noisy_bits")
    @classmethod
    def _bits_ok(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for b in value:
            if not (1 <= b <= 16 or b == 32):
                raise ValueError(f"bits must be in 1..16 or 32 (float32), got {b}")
        return tuple(sorted(set(value)))

    @field_validator("anchors")
    @classmethod
    def _sorted_unique(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(value)) != len(value):
            raise ValueError("anchor counts must be distinct")
        return tuple(sorted(value))


AxisValues = Annotated[tuple[Any, ...], Field(min_length=1)]


class SweepConfig(Strict):
    """The runs of a sweep (``relcomm sweep``): grid axes, zipped axes, seed replicates.

    An axis maps a field path of the scenario (``controller.anchors``,
    ``transmitters[0].traffic.rate_per_slot``) to the values it takes. Each value is set on the
    scenario's raw data, as ``--set`` does, then the whole is validated, so inherited defaults
    (a transmitter's link from ``channel.link``) still follow a swept value. Runs: the product of
    the grid axes × the rows of each zip group × ``seeds`` replicates
    (:mod:`simulator.experiment.sweep`).
    """

    grid: dict[str, AxisValues] = Field(default_factory=dict, description="path → values; every "
                                        "combination of the axes' values is run")
    zip: tuple[dict[str, AxisValues], ...] = Field((), description="groups of paths whose lists have equal "
                                                   "length and advance together (row i of a group sets "
                                                   "value i of each path); groups combine with the grid")
    seeds: PositiveInt = Field(1, le=100_000, description="replicates of every grid point, each with its own "
                               "seed drawn from the seed tree")

    @model_validator(mode="after")
    def _axes(self) -> SweepConfig:
        axes = [(("grid", path), path) for path in self.grid]
        for i, group in enumerate(self.zip):
            if not group:
                raise Located("a zip group needs at least one path", ("zip", i))
            lengths = {path: len(values) for path, values in group.items()}
            if len(set(lengths.values())) > 1:
                raise Located("the lists of one zip group must have equal lengths, got "
                               + ", ".join(f"{p}: {n}" for p, n in lengths.items()), ("zip", i))
            axes += [(("zip", i, path), path) for path in group]
        seen: list[tuple[str, tuple[str | int, ...]]] = []
        for where, path in axes:
            try:
                loc = parse_path(path)
            except ScenarioError as exc:
                raise Located(exc.message, where) from None
            if loc[0] == "sweep":
                raise Located("the sweep section cannot sweep itself", where)
            if loc == ("seed",):
                raise Located("the seed is not an axis: each replicate's seed comes from the seed tree "
                               "(set sweep.seeds for replicates)", where)
            for other_path, other in seen:
                n = min(len(loc), len(other))
                if loc[:n] == other[:n]:
                    raise Located(f"overlaps the axis {quoted(other_path)} (the same field, or one inside the other)", where)
            seen.append((path, loc))
        return self


class FrontierConfig(Strict):
    """The target grids of ``relcomm frontier`` (:mod:`simulator.experiment.frontier`); other commands ignore it.

    The offline bound is solved at every (delay target, accuracy target) pair of the two grids;
    the simulations (the lyapunov controller at ``v`` and the baselines) run on the coarser
    ``run_*`` grids, whose values must be grid values. Empty grids take the defaults that the
    frontier module documents (around the scenario's own targets).
    """

    delay_targets_s: tuple[Annotated[float, Field(gt=0.0, le=3600.0)], ...] = Field(
        (), description="delay targets of the bound's grid (s); empty = 8 values from 0.2 to 2 × delay_target_s")
    accuracy_targets: tuple[Annotated[float, Field(gt=0.0, lt=1.0)], ...] = Field(
        (), description="accuracy targets of the bound's grid; empty = accuracy_target − 0.02, − 0.01, + 0, + 0.01")
    run_delay_targets_s: tuple[Annotated[float, Field(gt=0.0, le=3600.0)], ...] | None = Field(
        None, description="delay targets simulated (values of delay_targets_s); empty list = none; "
        "default every other delay target, the largest included")
    run_accuracy_targets: tuple[Annotated[float, Field(gt=0.0, lt=1.0)], ...] | None = Field(
        None, description="accuracy targets simulated (values of accuracy_targets); empty list = none; "
        "default every other accuracy target, the largest included")
    baselines: tuple[Literal["static", "max-accuracy", "min-energy", "greedy"], ...] = Field(
        ("static", "max-accuracy", "min-energy", "greedy"), description="baselines simulated beside the controller")
    v: float = Field(1.0e5, gt=0.0, le=1e12, description="V of the simulated lyapunov controller (large: near "
                     "the bound; its place-holder backlogs come from the scenario, auto by default)")

    @field_validator("delay_targets_s", "accuracy_targets", "run_delay_targets_s", "run_accuracy_targets")
    @classmethod
    def _sorted_unique(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        return None if value is None else tuple(sorted(set(value)))


# --------------------------------------------------------------------------- network (issue 4)

AgentId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


class SimulationConfig(Strict):
    """Length and clock of a network run, the task deadline, and the targets the run is judged by."""

    slots: PositiveInt = Field(1000, le=100_000_000, description="number of controller slots to simulate")
    slot_s: float = Field(0.01, gt=0.0, le=3600.0, description="slot length: the controller's decision epoch")
    task_timeout_s: float | None = Field(
        None, gt=0.0, description="a task older than this is dropped (reason 'timeout') at its next "
        "stage change; empty = no deadline")
    delay_target_s: float | None = Field(None, gt=0.0, description="long-term mean delay target L_max")
    accuracy_target: float | None = Field(None, ge=0.0, le=1.0, description="long-term accuracy target A_min")
    delay_tolerance: float = Field(0.05, ge=0.0, le=10.0, description="relative slack when judging a run: its "
                                   "settled mean delay meets the target when ≤ delay_target_s × (1 + this)")
    accuracy_tolerance: float = Field(0.01, ge=0.0, le=1.0, description="absolute slack when judging a run: its "
                                      "settled accuracy meets the target when ≥ accuracy_target − this")


class TrafficConfig(Strict):
    """Task arrivals at a transmitter; each task is a test-split sample drawn with replacement."""

    kind: Literal["poisson", "deterministic", "bursty"] = Field(
        "poisson", description="poisson: exponential gaps; deterministic: one task every 1/rate slots; "
        "bursty: on-off, Poisson at rate_per_slot while on, exponential on and off periods")
    rate_per_slot: float = Field(0.5, gt=0.0, le=1e4, description="λ: mean arrivals per slot (bursty: while on)")
    mean_on_slots: float = Field(10.0, gt=0.0, le=1e9, description="bursty: mean length of an on period")
    mean_off_slots: float = Field(10.0, gt=0.0, le=1e9, description="bursty: mean length of an off period")

    @property
    def mean_rate_per_slot(self) -> float:
        """Mean arrivals per slot (bursty: ``rate_per_slot`` times the share of time on)."""
        if self.kind == "bursty":
            return self.rate_per_slot * self.mean_on_slots / (self.mean_on_slots + self.mean_off_slots)
        return self.rate_per_slot


class QueueConfig(Strict):
    """A device's bounded task queue (tasks waiting, not counting the one in service)."""

    capacity: PositiveInt = Field(64, le=10_000_000)
    drop_policy: Literal["drop-newest", "drop-oldest"] = Field(
        "drop-newest", description="full queue: refuse the arriving task, or evict the oldest waiting one")


class DeviceCpuConfig(Strict):
    """A device's CPU: DVFS range, switched capacitance κ (energy κ f² per cycle) and FLOPs per cycle β."""

    f_min_hz: float = Field(1e8, gt=0.0, le=1e12)
    f_max_hz: float = Field(1e9, gt=0.0, le=1e12)
    kappa: float = Field(1e-28, ge=0.0, le=1e-20)
    flops_per_cycle: float = Field(4.0, gt=0.0, le=1e6)

    @model_validator(mode="after")
    def _range(self) -> DeviceCpuConfig:
        if self.f_min_hz > self.f_max_hz:
            raise Located(f"f_min_hz = {self.f_min_hz} exceeds f_max_hz = {self.f_max_hz}", ("f_min_hz",))
        return self


class RadioConfig(Strict):
    """A device's radio: power cap, ARQ attempts, and whether packets are coded (finite blocklength)."""

    max_power_w: float = Field(0.2, gt=0.0, le=1e3)
    max_attempts: int = Field(4, ge=1, le=64, description="transmissions of one payload before the task "
                              "is dropped (1 = no retransmission)")
    packet_errors: Literal["none", "fbl"] = Field(
        "none", description="none: the channel mode alone decides the payload errors; fbl: coded packets, "
        "lost with the finite-blocklength error probability (then retransmitted), error-free when received")


class TransmitterConfig(Strict):
    """A device: encoder pool, task queue, CPU, radio, traffic source, and its link to one receiver."""

    id: AgentId
    receiver: str = Field(description="id of the receiver this device is associated with")
    encoders: tuple[str, ...] = Field(min_length=1, description="encoder pool (ids of encoders); the "
                                      "static controller uses the first unless controller.encoder is set")
    traffic: TrafficConfig = TrafficConfig()
    queue: QueueConfig = QueueConfig()
    cpu: DeviceCpuConfig = DeviceCpuConfig()
    radio: RadioConfig = RadioConfig()
    idle_power_w: float = Field(0.0, ge=0.0, le=1e3, description="drawn whenever the device is on")
    link: LinkConfig = Field(LinkConfig(), description="this device's link; keys left out take channel.link's")


class ReceiverConfig(Strict):
    """An edge server: its encoder (whose heads decode), a CPU shared by its devices, an input queue."""

    id: AgentId
    encoder: str
    cpu_hz: float = Field(1e10, gt=0.0, le=1e13)
    kappa: float = Field(1e-28, ge=0.0, le=1e-20)
    flops_per_cycle: float = Field(8.0, gt=0.0, le=1e6)
    scheduling: Literal["fifo", "processor-sharing", "partitioned"] = Field(
        "fifo", description="fifo: one queue at full speed; processor-sharing: every job in the system gets "
        "an equal part; partitioned: each device gets the share the controller assigns (FIFO within it)")
    queue_capacity: PositiveInt | None = Field(None, description="jobs in the system (waiting or in service); "
                                               "empty = unbounded")
    bandwidth_hz: float | None = Field(None, gt=0.0, le=1e11, description="empty = channel.bandwidth_hz")
    idle_power_w: float = Field(0.0, ge=0.0, le=1e4)


class _Interval(Strict):
    start_s: float = Field(ge=0.0)
    end_s: float = Field(gt=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> _Interval:
        if self.end_s <= self.start_s:
            raise Located(f"end_s = {self.end_s} must be after start_s = {self.start_s}", ("end_s",))
        return self


class LinkOutageFault(_Interval):
    """Blockage: the device's link carries nothing; an attempt on the air is lost and retried after."""

    transmitter: str


class DeviceOffFault(_Interval):
    """Churn: the device neither computes nor transmits; work in progress is lost and redone after."""

    transmitter: str


class ServerSlowdownFault(_Interval):
    """The server's CPU serves this system at ``factor`` × its speed (0 = stalled)."""

    receiver: str
    factor: float = Field(0.5, ge=0.0, lt=1.0)


class FaultsConfig(Strict):
    """Fault intervals, in simulated seconds from the start of the run."""

    link_outages: tuple[LinkOutageFault, ...] = ()
    device_off: tuple[DeviceOffFault, ...] = ()
    server_slowdowns: tuple[ServerSlowdownFault, ...] = ()


def _union_error(loc: tuple, err: dict, message: str) -> tuple[tuple, str]:
    """Drop the tag pydantic puts into the path of an error inside a union; name an unknown or missing tag.

    Two unions: ``controller`` (tag ``kind``) and each ``encoders[i]`` (tag ``arch``).
    """
    if loc[:1] == ("controller",):
        prefix, tag_field, known, what = loc[:1], "kind", tuple(CONTROLLER_KINDS), "controller kind"
    elif loc[:1] == ("encoders",) and len(loc) > 1:
        prefix, tag_field, known, what = loc[:2], "arch", tuple(ENCODER_FAMILIES), "encoder family"
    else:
        return loc, message
    if err.get("type") == "union_tag_invalid":
        tag = (err.get("ctx") or {}).get("tag")
        return prefix + (tag_field,), f"unknown {what} {quoted(tag)} (known: {', '.join(known)})"
    if err.get("type") == "union_tag_not_found":
        return prefix + (tag_field,), f"required field is missing (the {what}: {', '.join(known)})"
    n = len(prefix)
    if len(loc) > n and loc[n] in known:
        loc = loc[:n] + loc[n + 1:]
    return loc, message


class OutputsConfig(Strict):
    """Where the results go and what is written beside the data.

    ``dir`` is a folder *inside* the results root (``results/`` of the working folder): the
    commands write ``results/<dir>`` (``relcomm run``), ``results/<dir>-stitch``,
    ``results/<dir>-sweep`` and ``results/<dir>-tradeoff`` unless ``--out`` says otherwise. It
    must be relative and stay inside the root: an absolute path, a ``..`` part or a drive
    would write elsewhere by accident, and is refused.
    """

    dir: str | None = Field(None, min_length=1, max_length=255, description="results folder under results/ "
                            "(relative, no '..'); empty = the scenario's name")
    plots: bool = Field(True, description="draw each run's plots (PNG and PDF) into its results folder; "
                        "false saves about a second a run in large sweeps (`relcomm plot DIR` draws them later)")

    @field_validator("dir")
    @classmethod
    def _inside_root(cls, value: str | None) -> str | None:
        if value is None:
            return value
        path = Path(value)
        if path.is_absolute() or value.startswith(("~", "\\")) or ":" in value:
            raise ValueError(f"must be a folder relative to the results root, got {quoted(value)}")
        if ".." in path.parts or any(part.startswith(".") for part in path.parts):
            raise ValueError(f"must stay inside the results root (no '..' or hidden parts), got {quoted(value)}")
        if not path.parts or value.strip() in (".", "./"):
            raise ValueError(f"must name a folder inside the results root, not the root itself, got {quoted(value)}")
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return path.as_posix()


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
"""A scenario ``name``: a plain identifier, safe as one folder name (and no ``..`` anywhere)."""

RESULTS_ROOT = Path("results")
"""The results root of the commands' default folders, relative to the working folder."""


def default_results_dir(scenario: Scenario, suffix: str = "") -> Path:
    """``results/<outputs.dir or name><suffix>``: where a command writes when ``--out`` is not given."""
    return RESULTS_ROOT / f"{scenario.outputs.dir or scenario.name}{suffix}"


class Scenario(Strict):
    """A complete scenario file."""

    name: str = Field("scenario", min_length=1, max_length=128, json_schema_extra={"pattern": NAME_PATTERN},
                      description="identifier of the scenario (letters, digits, '-', '_', '.'; starts with a letter "
                      "or digit); names the default results folder results/<name>")
    seed: int = Field(0, ge=0, description="root of the seed tree")
    device: Literal["cpu", "auto", "cuda"] = Field("cpu", description="torch device; auto = CUDA when present")
    data: DataConfig = DataConfig()
    encoders: tuple[EncoderConfig, ...] = Field(min_length=1)
    anchors: AnchorConfig = AnchorConfig()
    relative: RelativeConfig = RelativeConfig()
    heads: HeadConfig = HeadConfig()
    channel: ChannelConfig = ChannelConfig()
    stitching: StitchConfig = StitchConfig()
    simulation: SimulationConfig = SimulationConfig()
    receivers: tuple[ReceiverConfig, ...] = ()
    transmitters: tuple[TransmitterConfig, ...] = ()
    faults: FaultsConfig = FaultsConfig()
    controller: ControllerConfig = Field(CONTROLLER_KINDS[DEFAULT_KIND].settings(), description="who decides "
                                         "each slot: kind " + ", ".join(CONTROLLER_KINDS))
    outputs: OutputsConfig = OutputsConfig()
    sweep: SweepConfig | None = Field(None, description="runs of `relcomm sweep`; other commands ignore it")
    frontier: FrontierConfig | None = Field(None, description="target grids of `relcomm frontier`; other commands "
                                            "ignore it")

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        # The name becomes a folder under results/: a separator or '..' would write elsewhere.
        if not re.fullmatch(NAME_PATTERN, value) or ".." in value:
            raise ValueError(f"must be a plain identifier (letters, digits, '-', '_', '.'; starting with a letter or "
                             f"digit; no '/' or '..'), got {quoted(value)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _sweep_values(cls, values: Any) -> Any:
        # Every axis value must give a valid scenario on its own: set it on the raw data (as
        # --set does) and validate. Checked only once the rest is valid, so that an error in
        # the scenario itself is reported at its own path, not at an axis.
        if not isinstance(values, dict) or not isinstance(values.get("sweep"), dict):
            return values
        try:
            spec = SweepConfig.model_validate(values["sweep"])
            Scenario.model_validate({k: v for k, v in values.items() if k != "sweep"})
        except ValidationError:
            return values  # field validation reports it
        base = {k: v for k, v in values.items() if k != "sweep"}
        axes = [(("sweep", "grid", p), p, vs) for p, vs in spec.grid.items()]
        axes += [(("sweep", "zip", i, p), p, vs) for i, group in enumerate(spec.zip) for p, vs in group.items()]
        for where, path, axis_values in axes:
            for value in axis_values:
                try:
                    parse_scenario(apply_overrides(base, [Override(parse_path(path), value, path)]))
                except ScenarioError as exc:
                    if exc.message == "unknown key":
                        raise Located(f"not a scenario field ({exc.path}: unknown key)", where) from None
                    raise Located(f"value {quoted(value)} is invalid: {exc.one_line()}", where) from None
        return values

    @model_validator(mode="before")
    @classmethod
    def _inherit_link(cls, values: Any) -> Any:
        # A transmitter's link starts from channel.link and overrides only the keys it gives, so
        # the resolved scenario spells out every device's effective link.
        if not isinstance(values, dict) or not isinstance(values.get("transmitters"), (list, tuple)):
            return values
        channel = values.get("channel")
        if isinstance(channel, BaseModel):
            default = channel.link.model_dump()
        elif isinstance(channel, dict) and isinstance(channel.get("link"), dict):
            default = channel["link"]
        else:
            default = {}
        txs = []
        for tx in values["transmitters"]:
            if isinstance(tx, dict) and (tx.get("link") is None or isinstance(tx.get("link"), dict)):
                tx = {**tx, "link": {**default, **(tx.get("link") or {})}}
            txs.append(tx)
        return {**values, "transmitters": txs}

    @model_validator(mode="after")
    def _network_fields(self) -> Scenario:
        encoders = {e.id for e in self.encoders}
        rx_ids: dict[str, int] = {}
        for i, rx in enumerate(self.receivers):
            if rx.id in rx_ids:
                raise Located(f"duplicate agent id {quoted(rx.id)}", ("receivers", i, "id"))
            rx_ids[rx.id] = i
            if rx.encoder not in encoders:
                raise Located(f"unknown encoder {quoted(rx.encoder)} (known: {', '.join(sorted(encoders))})",
                               ("receivers", i, "encoder"))
        tx_ids: set[str] = set()
        share: dict[str, float] = {}
        for i, tx in enumerate(self.transmitters):
            if tx.id in tx_ids or tx.id in rx_ids:
                raise Located(f"duplicate agent id {quoted(tx.id)}", ("transmitters", i, "id"))
            tx_ids.add(tx.id)
            if tx.receiver not in rx_ids:
                raise Located(f"unknown receiver {quoted(tx.receiver)} (known: {', '.join(sorted(rx_ids)) or 'none'})",
                               ("transmitters", i, "receiver"))
            for j, enc in enumerate(tx.encoders):
                if enc not in encoders:
                    raise Located(f"unknown encoder {quoted(enc)} (known: {', '.join(sorted(encoders))})",
                                   ("transmitters", i, "encoders", j))
            if len(set(tx.encoders)) != len(tx.encoders):
                raise Located("encoder ids in a pool must be distinct", ("transmitters", i, "encoders"))
            if tx.link.bandwidth_share is not None:
                share[tx.receiver] = share.get(tx.receiver, 0.0) + tx.link.bandwidth_share
                if share[tx.receiver] > 1.0 + 1e-9:
                    raise Located(f"bandwidth shares of receiver {quoted(tx.receiver)} add up to more than 1",
                                   ("transmitters", i, "link", "bandwidth_share"))
            if tx.radio.packet_errors == "fbl" and self.channel.mode == "analog":
                raise Located("finite-blocklength packets need a digital or ideal channel.mode, not analog",
                               ("transmitters", i, "radio", "packet_errors"))
        self.controller.check_scenario(self)  # the kind's own cross-field rules (simulator.control.kinds)
        for kind, ids, key in (("link_outages", tx_ids, "transmitter"), ("device_off", tx_ids, "transmitter"),
                               ("server_slowdowns", set(rx_ids), "receiver")):
            last_end: dict[str, float] = {}
            faults = getattr(self.faults, kind)
            for i in sorted(range(len(faults)), key=lambda i: faults[i].start_s):
                agent = getattr(faults[i], key)
                if agent not in ids:
                    raise Located(f"unknown {key} {quoted(agent)}", ("faults", kind, i, key))
                if faults[i].start_s < last_end.get(agent, -1.0):
                    raise Located(f"overlaps another {kind} interval of {quoted(agent)}", ("faults", kind, i, "start_s"))
                last_end[agent] = faults[i].end_s
        return self


    @model_validator(mode="after")
    def _cross_fields(self) -> Scenario:
        seen: set[str] = set()
        for i, enc in enumerate(self.encoders):
            if enc.id in seen:
                raise Located(f"duplicate encoder id {quoted(enc.id)}", ("encoders", i, "id"))
            seen.add(enc.id)
        for i, k in enumerate(self.stitching.anchors):
            if k > self.anchors.count:
                raise Located(f"anchor count {k} exceeds the anchor list length "
                               f"anchors.count = {self.anchors.count}", ("stitching", "anchors", i))
        ca = self.stitching.curve_anchors
        if ca is not None and ca not in self.stitching.anchors:
            raise Located(f"{ca} is not one of stitching.anchors", ("stitching", "curve_anchors"))
        return self

    def encoder(self, encoder_id: str) -> EncoderConfig:
        for enc in self.encoders:
            if enc.id == encoder_id:
                return enc
        raise KeyError(encoder_id)


# --------------------------------------------------------------------------- loading


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
    """Read a scenario file safely (size, nesting and aliases bounded: :mod:`simulator.yamlio`); return the data and its node tree (for lines)."""
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
    return yamlio.load(text, str(path))


def parse_scenario(data: Any, node: yaml.Node | None = None, source: str = "scenario") -> Scenario:
    """Validate a mapping as a :class:`Scenario`; errors become one-line :class:`ScenarioError`."""
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a YAML mapping at the top level", path=source)
    if "version" in data:  # a results folder's scenario.yaml names the relcomm that wrote it; it runs again
        if not isinstance(data["version"], str):
            raise ScenarioError("must be a string (the relcomm version that wrote this scenario)", path="version",
                                line=_line_of(node, ("version",)))
        data = {k: v for k, v in data.items() if k != "version"}
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err.get("loc", ()))
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, Located):
            loc = loc + ctx_error.loc
            message = str(ctx_error)
        else:
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            elif err["type"] == "missing":
                message = "required field is missing"
        loc, message = _union_error(loc, err, message)
        raise ScenarioError(message, path=format_path(loc) or source, line=_line_of(node, loc)) from None


def _is_prefix(a: str, b: str) -> bool:
    return b == a or b.startswith(a + ".") or b.startswith(a + "[")


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Load a scenario file, apply ``--set`` overrides (:mod:`simulator.overrides`) to its raw data, and validate.

    An error in a field that an override set (or in a key it named) is reported at that path,
    with the override as typed and without the file's line number (the file is not at fault).
    """
    parsed = [parse_override(text) for text in overrides]
    data, node = read_yaml(path)
    if not parsed:
        return parse_scenario(data, node, source=str(path))
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a YAML mapping at the top level", path=str(path))
    for ov in parsed:
        try:
            data = apply_overrides(data, [ov])
        except ScenarioError as exc:
            raise ScenarioError(f"{exc.message} (from --set {clipped(ov.text)})", path=exc.path) from None
    try:
        return parse_scenario(data, node, source=str(path))
    except ScenarioError as exc:
        for ov in reversed(parsed):
            if exc.path and (_is_prefix(ov.path, exc.path) or _is_prefix(exc.path, ov.path)):
                raise ScenarioError(f"{exc.message} (from --set {clipped(ov.text)})", path=exc.path) from None
        raise


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The resolved scenario as plain data (for ``scenario.yaml`` in results and for cache keys)."""
    exclude = {name for name in ("sweep", "frontier") if getattr(scenario, name) is None}
    return scenario.model_dump(mode="json", exclude=exclude or None)
