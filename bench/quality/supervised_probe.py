#!/usr/bin/env python3
"""Can a synthetic set's labels be heard at all? A supervised ceiling check (offline tooling, not run by CI).

Trains the cnn-cpu audio architecture (same blocks as src/model/cnn_audio.cpp) with two softmax heads, genre
and lead instrument, on log-mel features that `synclap features` computed, and prints test accuracy per epoch
and per ensemble size. If a supervised model cannot learn a label, a contrastive one will not either.

  synclap features --truncation first -o DATA/sup_train.npy <first 2 400 train clips>
  synclap features --truncation first -o DATA/sup_test.npy  <test clips>
  /usr/bin/python3 bench/quality/supervised_probe.py DATA [EPOCHS]

(the file lists must follow manifest order: train clips, then test clips, as this script reads them).
Needs Debian's python3-torch and python3-numpy.
"""
import collections
import json
import sys
import time

import numpy as np
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, 2, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = torch.relu(self.b1(self.c1(x)))
        return torch.relu(self.b2(self.c2(x)))


class Probe(nn.Module):
    def __init__(self, n_genre, n_lead, mels=64, channels=(16, 32, 64, 128, 256)):
        super().__init__()
        self.bn = nn.BatchNorm2d(mels)
        ch = (1,) + tuple(channels)
        self.blocks = nn.Sequential(*[Block(ch[i], ch[i + 1]) for i in range(len(channels))])
        self.genre = nn.Linear(ch[-1], n_genre)
        self.lead = nn.Linear(ch[-1], n_lead)

    def forward(self, x):  # x: [B, 1, T, F]
        x = self.bn(x.transpose(1, 3)).transpose(1, 3)
        t = self.blocks(x).mean(3)
        pooled = t.max(2)[0] + t.mean(2)
        return self.genre(pooled), self.lead(pooled)


def main():
    data = sys.argv[1]
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    torch.set_num_threads(2)
    torch.manual_seed(0)
    items = [json.loads(line) for line in open(data + "/manifest.jsonl")]
    train = [r for r in items if r["split"] == "train"][:2400]
    test = [r for r in items if r["split"] == "test"]
    genres = sorted({r["labels"]["genre"] for r in items})
    leads = sorted({r["labels"].get("lead") or "-" for r in items})

    def targets(rows):
        return (torch.tensor([genres.index(r["labels"]["genre"]) for r in rows]),
                torch.tensor([leads.index(r["labels"].get("lead") or "-") for r in rows]))

    xtr = torch.from_numpy(np.load(data + "/sup_train.npy"))
    xte = torch.from_numpy(np.load(data + "/sup_test.npy"))
    assert len(xtr) == len(train) and len(xte) == len(test), "feature files do not match the manifest"
    ytr, yte = targets(train), targets(test)
    # Genre accuracy is also printed per value of these labels of the test clips ("instrumentation": genre |
    # balanced, only in sets made with synth --genre-instruments).
    breakdown = {"ensemble": "ensemble", "time signature": "time_signature", "instrumentation": "instrumentation"}
    has_lead = yte[1] != leads.index("-")

    model = Probe(len(genres), len(leads))
    opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=0.1)
    ce = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(train))
        for i in range(0, len(train), 64):
            idx = perm[i:i + 64]
            g, l = model(xtr[idx])
            loss = ce(g, ytr[0][idx]) + ce(l, ytr[1][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            outs = [model(xte[i:i + 100]) for i in range(0, len(test), 100)]
        pg = torch.cat([o[0] for o in outs]).argmax(1)
        pl = torch.cat([o[1] for o in outs]).argmax(1)
        right = (pg == yte[0]).tolist()
        parts = []
        for name, key in breakdown.items():
            per = collections.defaultdict(list)
            for r, ok in zip(test, right):
                if key in r["labels"]:
                    per[r["labels"][key]].append(ok)
            if per:
                parts.append(f"by {name}: " + ", ".join(f"{e} {sum(v) / len(v):.2f}" for e, v in sorted(per.items())))
        genre_acc = float((pg == yte[0]).float().mean())
        lead_acc = float((pl == yte[1])[has_lead].float().mean())
        print(f"epoch {epoch}  {time.time() - t0:.0f} s  genre {genre_acc:.3f}  lead {lead_acc:.3f}  "
              f"(genre {'; '.join(parts)})", flush=True)
    per_genre = collections.defaultdict(list)
    for k in range(len(test)):
        per_genre[genres[int(yte[0][k])]].append(genres[int(pg[k])])
    print("genre accuracy at the end (most frequent wrong answer):")
    for g, answers in sorted(per_genre.items()):
        wrong = collections.Counter(a for a in answers if a != g).most_common(1)
        print(f"  {g:14s} {answers.count(g) / len(answers):.2f} of {len(answers):3d}"
              + (f"  (else {wrong[0][0]})" if wrong else ""))


if __name__ == "__main__":
    main()
