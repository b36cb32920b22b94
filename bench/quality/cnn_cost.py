#!/usr/bin/env python3
"""Arithmetic cost and reach of a cnn_audio tower, from its model config (no LibTorch needed).

    python3 bench/quality/cnn_cost.py configs/cnn-cpu.json [configs/cnn-cpu-temporal.json ...] [--seconds 10]

For each config: multiply-accumulates (MACs; FLOPs = 2 x MACs) of one forward pass over a clip, split into the
convolution blocks and the temporal layers, and the receptive field of one frame of the last map, in input
frames (10 ms each) and seconds. The shapes follow src/model/cnn_audio.cpp: 3x3 convolutions with padding 1,
the first of each block with stride 2 (then `convs_per_block` - 1 of stride 1), a mean over frequency, then
`temporal_layers` Conv1d of kernel 3 with dilations 1, 2, 4, ... BatchNorm, ReLU, pooling and the Linear are
left out (a few per cent at most).
"""
import argparse
import json


def cost(cfg, seconds):
    a = cfg["audio_config"]
    t, f = int(seconds * 100) + 1, a.get("num_mel_bins", 64)  # frames of 10 ms (1 001 for 10 s), mel bins
    c_in = a.get("in_channels", 1)
    convs = a.get("convs_per_block", 1)
    macs_blocks = 0
    rf, jump = 1, 1  # receptive field and distance between neighbouring outputs, in input frames
    for c_out in a["channels"]:
        for k in range(convs):
            if k == 0:
                t, f = (t - 1) // 2 + 1, (f - 1) // 2 + 1
            macs_blocks += c_out * c_in * 9 * t * f
            rf += 2 * jump
            if k == 0:
                jump *= 2
            c_in = c_out
    macs_temporal = 0
    for i in range(a.get("temporal_layers", 0)):
        macs_temporal += c_in * c_in * 3 * t
        rf += 2 * (1 << i) * jump
    return macs_blocks, macs_temporal, rf, t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    for path in args.configs:
        with open(path) as fh:
            blocks, temporal, rf, frames = cost(json.load(fh), args.seconds)
        print(f"{path}: {args.seconds:g} s clip -> {frames} frames in the last map")
        print(f"  blocks   {blocks / 1e6:7.1f} M MACs ({2 * blocks / 1e6:.0f} MFLOP)")
        print(f"  temporal {temporal / 1e6:7.1f} M MACs ({2 * temporal / 1e6:.0f} MFLOP, "
              f"{100 * temporal / blocks:.1f} % of the blocks)")
        print(f"  one frame of the last map hears {rf} input frames ({rf / 100:.2f} s)")


if __name__ == "__main__":
    main()
