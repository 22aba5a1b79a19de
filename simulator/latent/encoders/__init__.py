"""Encoder families behind one interface (:mod:`.base`), found by the scenario's ``arch`` (:mod:`.registry`).

Adding a family is one module here (its config model, subclassing
:class:`~simulator.latent.encoders.base.EncoderSpec` and decorated with
:func:`~simulator.latent.encoders.registry.register`) plus its import below.
"""

from simulator.latent.encoders import cnn, embeddings, mlp, word_bag  # noqa: F401  (registration)
from simulator.latent.encoders import sentence_transformer  # noqa: F401  (registration)
from simulator.latent.encoders import e5_small  # noqa: F401  (registration)
from simulator.latent.encoders import efficientnet_lite0  # noqa: F401  (registration)
from simulator.latent.encoders.base import DataInfo, Encoder, EncoderSpec
from simulator.latent.encoders.registry import FAMILIES, register, spec_union

EncoderConfig = spec_union()
"""The type of one ``encoders:`` entry of a scenario (a union of the families on ``arch``)."""

__all__ = ["DataInfo", "Encoder", "EncoderSpec", "EncoderConfig", "FAMILIES", "register"]
