"""The reference pipeline a user would otherwise copy: facenet-pytorch's MTCNN plus a float32
PyTorch Inception-ResNet-v1 carrying the same ``facenet_keras.h5`` weights, on the CPU.

Runs inside the benchmark environment (torch, facenet-pytorch); started by
``benchmarks/compare.py``. Reads a JSON job on stdin, writes JSON on stdout:

    {"weights": path, "frame": path, "repeat": n, "threads": 2, "margin": 0, "images": [paths]}

Embeddings of the reference are checked against the Keras model's by the
caller, so a mis-mapped layer cannot pass unnoticed.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

import h5py
import numpy as np
import torch
from facenet_pytorch import MTCNN, InceptionResnetV1
from PIL import Image


def _conv(dst: Any, group: Any, name: str) -> None:
    """Keras conv (+ BatchNorm without gamma) -> facenet-pytorch BasicConv2d or plain Conv2d."""
    g = group[name][name]
    conv = dst.conv if hasattr(dst, "conv") else dst
    conv.weight.data = torch.from_numpy(np.transpose(g["kernel:0"][()], (3, 2, 0, 1)).copy())
    if "bias:0" in g:
        conv.bias.data = torch.from_numpy(g["bias:0"][()])
    if hasattr(dst, "bn"):
        b = group[f"{name}_BatchNorm"][f"{name}_BatchNorm"]
        dst.bn.weight.data = torch.ones_like(dst.bn.weight)
        dst.bn.bias.data = torch.from_numpy(b["beta:0"][()])
        dst.bn.running_mean.data = torch.from_numpy(b["moving_mean:0"][()])
        dst.bn.running_var.data = torch.from_numpy(b["moving_variance:0"][()])


BRANCHES = {
    "Block35": {"Branch_0_Conv2d_1x1": "branch0", "Branch_1_Conv2d_0a_1x1": "branch1.0",
                "Branch_1_Conv2d_0b_3x3": "branch1.1", "Branch_2_Conv2d_0a_1x1": "branch2.0",
                "Branch_2_Conv2d_0b_3x3": "branch2.1", "Branch_2_Conv2d_0c_3x3": "branch2.2", "Conv2d_1x1": "conv2d"},
    "Block17": {"Branch_0_Conv2d_1x1": "branch0", "Branch_1_Conv2d_0a_1x1": "branch1.0",
                "Branch_1_Conv2d_0b_1x7": "branch1.1", "Branch_1_Conv2d_0c_7x1": "branch1.2", "Conv2d_1x1": "conv2d"},
    "Block8": {"Branch_0_Conv2d_1x1": "branch0", "Branch_1_Conv2d_0a_1x1": "branch1.0",
               "Branch_1_Conv2d_0b_1x3": "branch1.1", "Branch_1_Conv2d_0c_3x1": "branch1.2", "Conv2d_1x1": "conv2d"},
    "Mixed_6a": {"Branch_0_Conv2d_1a_3x3": "branch0", "Branch_1_Conv2d_0a_1x1": "branch1.0",
                 "Branch_1_Conv2d_0b_3x3": "branch1.1", "Branch_1_Conv2d_1a_3x3": "branch1.2"},
    "Mixed_7a": {"Branch_0_Conv2d_0a_1x1": "branch0.0", "Branch_0_Conv2d_1a_3x3": "branch0.1",
                 "Branch_1_Conv2d_0a_1x1": "branch1.0", "Branch_1_Conv2d_1a_3x3": "branch1.1",
                 "Branch_2_Conv2d_0a_1x1": "branch2.0", "Branch_2_Conv2d_0b_3x3": "branch2.1",
                 "Branch_2_Conv2d_1a_3x3": "branch2.2"},
}


def load_facenet(weights: str) -> InceptionResnetV1:
    model = InceptionResnetV1(pretrained=None, classify=False)
    model.last_linear = torch.nn.Linear(1792, 128, bias=False)
    model.last_bn = torch.nn.BatchNorm1d(128, eps=0.001, momentum=0.1, affine=True)
    with h5py.File(weights, "r") as f:
        g = f["model_weights"]
        for keras, mod in (("Conv2d_1a_3x3", model.conv2d_1a), ("Conv2d_2a_3x3", model.conv2d_2a),
                           ("Conv2d_2b_3x3", model.conv2d_2b), ("Conv2d_3b_1x1", model.conv2d_3b),
                           ("Conv2d_4a_3x3", model.conv2d_4a), ("Conv2d_4b_3x3", model.conv2d_4b)):
            _conv(mod, g, keras)
        blocks = ([(f"Block35_{i + 1}", "Block35", model.repeat_1[i]) for i in range(5)]
                  + [(f"Block17_{i + 1}", "Block17", model.repeat_2[i]) for i in range(10)]
                  + [(f"Block8_{i + 1}", "Block8", model.repeat_3[i]) for i in range(5)]
                  + [("Block8_6", "Block8", model.block8), ("Mixed_6a", "Mixed_6a", model.mixed_6a),
                     ("Mixed_7a", "Mixed_7a", model.mixed_7a)])
        for prefix, kind, block in blocks:
            for leaf, path in BRANCHES[kind].items():
                _conv(block.get_submodule(path), g, f"{prefix}_{leaf}")
        model.last_linear.weight.data = torch.from_numpy(g["Bottleneck"]["Bottleneck"]["kernel:0"][()].T.copy())
        b = g["Bottleneck_BatchNorm"]["Bottleneck_BatchNorm"]
        model.last_bn.weight.data = torch.ones(128)
        model.last_bn.bias.data = torch.from_numpy(b["beta:0"][()])
        model.last_bn.running_mean.data = torch.from_numpy(b["moving_mean:0"][()])
        model.last_bn.running_var.data = torch.from_numpy(b["moving_variance:0"][()])
    return model.eval().to(memory_format=torch.channels_last)


def prewhiten(x: torch.Tensor) -> torch.Tensor:
    std_adj = torch.clamp(x.std(), min=1.0 / (x.numel() ** 0.5))
    return (x - x.mean()) / std_adj


class Reference:
    def __init__(self, weights: str, margin: int) -> None:
        # post_process=False: the crops stay 0-255, the weights expect per-image standardisation
        self.mtcnn = MTCNN(image_size=160, margin=margin, post_process=False, select_largest=True, device="cpu")
        self.model = load_facenet(weights)

    @torch.inference_mode()
    def embed_image(self, img: Image.Image) -> np.ndarray | None:
        crop = self.mtcnn(img)
        if crop is None:
            return None
        x = prewhiten(crop.float()).unsqueeze(0).contiguous(memory_format=torch.channels_last)
        return self.model(x)[0].numpy()


def main() -> int:
    job: dict[str, Any] = json.load(sys.stdin)
    torch.set_num_threads(int(job.get("threads", 2)))
    ref = Reference(job["weights"], int(job.get("margin", 0)))
    out: dict[str, Any] = {"torch": torch.__version__, "threads": torch.get_num_threads(), "margin": job.get("margin")}
    frame = Image.open(job["frame"]).convert("RGB")
    for _ in range(3):
        ref.embed_image(frame)
    samples = []
    for _ in range(int(job.get("repeat", 20))):
        t = time.perf_counter()
        emb = ref.embed_image(frame)
        samples.append((time.perf_counter() - t) * 1000)
        assert emb is not None, "no face in the benchmark frame"
    out["frame_ms"] = {"median_ms": round(statistics.median(samples), 3), "min_ms": round(min(samples), 3),
                       "max_ms": round(max(samples), 3), "n": len(samples)}
    crops = job.get("crops", [])
    if crops:  # the kiosk's own aligned crops: checks the weight mapping against the Keras model
        with torch.inference_mode():
            x = torch.stack([prewhiten(torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), np.float32))
                                       .permute(2, 0, 1)) for p in crops]).contiguous(memory_format=torch.channels_last)
            out["crop_embeddings"] = ref.model(x).numpy().tolist()
    embs = {}
    for path in job.get("images", []):
        e = ref.embed_image(Image.open(path).convert("RGB"))
        embs[path] = None if e is None else e.tolist()
    out["embeddings"] = embs
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
