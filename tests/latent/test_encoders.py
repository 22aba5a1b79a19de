import torch
from torch import nn

from simulator.config import EncoderConfig
from simulator.latent.encoders import build_encoder, count_flops
from simulator.latent.training import init_weights
from simulator.rng import SeedTree


def test_mlp_flops_match_hand_count():
    enc = build_encoder(EncoderConfig(id="m", arch="mlp", latent_dim=16, hidden=(32, 8)), (1, 8, 8))
    linear = (2 * 64 + 1) * 32 + (2 * 32 + 1) * 8 + (2 * 8 + 1) * 16
    relu = 32 + 8
    assert count_flops(enc, (1, 8, 8)) == linear + relu


def test_cnn_flops_match_hand_count():
    enc = build_encoder(EncoderConfig(id="c", arch="cnn", latent_dim=10, hidden=(4, 6)), (1, 8, 8))
    conv1 = (2 * 1 * 9 + 1) * 4 * 8 * 8
    act1 = 4 * 8 * 8 * 2            # ReLU and max-pool each read 4×8×8 elements
    conv2 = (2 * 4 * 9 + 1) * 6 * 4 * 4
    act2 = 6 * 4 * 4 * 2
    fc = (2 * 6 * 2 * 2 + 1) * 10
    assert count_flops(enc, (1, 8, 8)) == conv1 + act1 + conv2 + act2 + fc


def test_weights_depend_on_the_seed_only():
    cfg = EncoderConfig(id="m", arch="mlp", latent_dim=8, hidden=(16,))
    nets = []
    for seed in (1, 1, 2):
        net = build_encoder(cfg, (1, 8, 8))
        init_weights(net, SeedTree(seed).child("init").torch())
        nets.append(torch.cat([p.flatten() for p in net.parameters()]))
    assert torch.equal(nets[0], nets[1]) and not torch.equal(nets[0], nets[2])


def test_latent_size_is_configurable_for_both_architectures():
    for arch in ("mlp", "cnn"):
        for d in (3, 50):
            enc = build_encoder(EncoderConfig(id="e", arch=arch, latent_dim=d, hidden=(8,)), (1, 28, 28))
            assert isinstance(enc, nn.Module) and enc(torch.zeros(2, 1, 28, 28)).shape == (2, d)
