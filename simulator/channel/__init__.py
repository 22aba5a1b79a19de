"""Wireless channel layer: path loss, fading, link budget, modulation and payload transmission.

Submodules, one concept each: :mod:`.pathloss` (dB conversions, noise PSD, path gain,
shadowing), :mod:`.fading` (small-scale fading traces), :mod:`.link` (SNR, rates, power,
outage, finite-blocklength error, ARQ), :mod:`.modulation` (BER of uncoded modulations) and
:mod:`.quantize` (quantizer, bit layout, bit flips, analog AWGN). Never imports SimPy.
"""

from .fading import FADING_MODELS, fading_trace, gain_trace, jakes_rho
from .link import (
    ArqOutcome,
    arq,
    capacity_bps,
    channel_uses,
    empirical_outage_probability,
    fbl_error_probability,
    max_rate_bps,
    power_for_rate_w,
    rayleigh_outage_probability,
    snr,
)
from .modulation import MODULATIONS, ber, bits_per_symbol, q_function
from .payload import MODES, transmit_payload
from .pathloss import (
    db_to_linear,
    dbm_to_w,
    fixed_loss_gain,
    linear_to_db,
    log_distance_gain,
    noise_psd_w_hz,
    shadowing_gain,
    w_to_dbm,
)
from .quantize import (
    FLOAT_BITS,
    analog_awgn,
    bits_to_codes,
    codes_to_bits,
    dequantize,
    flip_bits,
    payload_bits,
    quantize,
    step_size,
)

__all__ = [
    "MODES",
    "transmit_payload",
    "FADING_MODELS",
    "fading_trace",
    "gain_trace",
    "jakes_rho",
    "ArqOutcome",
    "arq",
    "capacity_bps",
    "channel_uses",
    "empirical_outage_probability",
    "fbl_error_probability",
    "max_rate_bps",
    "power_for_rate_w",
    "rayleigh_outage_probability",
    "snr",
    "MODULATIONS",
    "ber",
    "bits_per_symbol",
    "q_function",
    "db_to_linear",
    "dbm_to_w",
    "fixed_loss_gain",
    "linear_to_db",
    "log_distance_gain",
    "noise_psd_w_hz",
    "shadowing_gain",
    "w_to_dbm",
    "FLOAT_BITS",
    "analog_awgn",
    "bits_to_codes",
    "codes_to_bits",
    "dequantize",
    "flip_bits",
    "payload_bits",
    "quantize",
    "step_size",
]
