#!/usr/bin/env python3
"""Where the int8 face detector's error comes from: weights or activations.

Replays the 200 frames of `runtime/tests/int8_detector_replay.rs` (the demo photo and the
photos, each panned and zoomed 20 ways, letterboxed as `vision::frame::letterbox_into`
does) through ONNX Runtime, graph optimizations off, so that a QDQ model runs as float
arithmetic on the int8 grid ("fake quantization"). It compares these variants with the
float model:

  float, input noise     the float model on frames with +-1 pixel level of uniform noise:
                         how far the goal's count moves with no quantization at all
  all int8               the QDQ twin as `fer quantize` writes it
  activations float      its weights int8, every activation's QuantizeLinear/
                         DequantizeLinear pair replaced by Identity (Relu where the pair
                         clamped at zero: a fused ReLU)
  conv outputs ... float the same for the convs whose output an Add reads: what a conv
                         with its residual Add fused in would compute (one rounding)
  weights at N bits      the float model with each conv's weights rounded per output
                         channel to N bits (symmetric, max-abs scale), activations float
  ... + bias correction  the same, each conv's bias less the mean its rounded weights
                         move its output by (Nagel et al. 2019), measured on the
                         calibration photos, or on the replayed frames themselves

and reports, for each, the frames whose face count differs from float's and the RMS error
of the score logits near the threshold (float logit within +-2). The decode follows
`vision::decode` (896 SSD anchors, score > 0.5, weighted NMS at IoU 0.3).

  pip install onnx onnxruntime numpy pillow
  scripts/blazeface-int8.sh                       # writes models/blazeface_short.qdq.onnx
  python3 scripts/detector-int8-error.py [--photos ../shared/data/photos] [--each] [--each-weight]

`--each` also bypasses one activation tensor at a time (70 runs); `--each-weight` keeps
one conv's weights float at a time, the others at 8 bits (37 runs): the layers worth
`fer quantize --split-weights`.
"""
import argparse, glob, os
import numpy as np, onnx, onnxruntime as ort
from PIL import Image

ort.set_default_logger_severity(3)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def taps(x, n):
    """Bilinear taps as `frame::taps`: (i0, i1, weight of i1, inside)."""
    x0 = np.floor(x)
    inside = (x > -1) & (x < n)
    i0 = np.clip(x0, 0, n - 1).astype(int)
    i1 = np.clip(x0 + 1, 0, n - 1).astype(int)
    return i0, i1, (x - x0).astype(np.float32), inside


def letterbox(img, size=128):
    """`frame::letterbox_into` with BlazeFace's scale 1/127.5 and offset -1; bars are 0."""
    px = np.asarray(img, np.float32)
    h, w = px.shape[:2]
    side = float(max(w, h))
    step = side / size
    centres = (np.arange(size, dtype=np.float32) + 0.5) * step - 0.5
    x0, x1, fx, xin = taps(centres - (side - w) / 2, w)
    y0, y1, fy, yin = taps(centres - (side - h) / 2, h)
    fx, fy = fx[None, :, None], fy[:, None, None]
    top = px[y0][:, x0] * (1 - fx) + px[y0][:, x1] * fx
    bottom = px[y1][:, x0] * (1 - fx) + px[y1][:, x1] * fx
    out = (top * (1 - fy) + bottom * fy) * np.float32(1 / 127.5) - 1
    out[~(yin[:, None] & xin[None, :])] = 0
    return out.transpose(2, 0, 1)[None].astype(np.float32)


def photo_paths(photos):
    """The demo photo, then the photos in `photos`, in name order."""
    return [os.path.join(ROOT, "demo/astronaut.jpg")] + sorted(glob.glob(photos + "/*"))


def replay_frames(photos):
    """The test's 200 frames: crops from 100% to 62%, sliding from corner to corner."""
    frames = []
    for p in photo_paths(photos):
        img = Image.open(p).convert("RGB")
        w, h = img.size
        for k in range(20):
            if len(frames) == 200:
                return frames
            s = 1 - 0.02 * k
            cw, ch = max(int(w * s), 16), max(int(h * s), 16)
            x, y = (w - cw) * k // 19, (h - ch) * (19 - k) // 19
            frames.append(letterbox(img.crop((x, y, x + cw, y + ch))))
    return frames


def anchors():
    a = []
    for g, n in ((16, 2), (8, 6)):
        for y in range(g):
            for x in range(g):
                a += [((x + 0.5) / g, (y + 0.5) / g)] * n
    return np.array(a, np.float32)


ANCHORS = anchors()


def faces(reg, logit):
    """Detections (weighted NMS at IoU 0.3) of one frame's outputs: a list of boxes."""
    score = 1 / (1 + np.exp(-np.clip(logit, -80, 80)))
    c = reg[:, :2] / 128 + ANCHORS
    box = np.concatenate([c - reg[:, 2:4] / 256, c + reg[:, 2:4] / 256], 1)
    area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
    left = [i for i in np.argsort(-score) if score[i] > 0.5]
    out = []
    while left:
        b = box[left]
        iw = np.clip(np.minimum(b[:, 2], b[0, 2]) - np.maximum(b[:, 0], b[0, 0]), 0, None)
        ih = np.clip(np.minimum(b[:, 3], b[0, 3]) - np.maximum(b[:, 1], b[0, 1]), 0, None)
        inter = iw * ih
        iou = inter / (area[left] + area[left[0]] - inter)
        group = [i for i, o in zip(left, iou) if o > 0.3]
        out.append(box[group].T @ score[group] / score[group].sum())
        left = [i for i, o in zip(left, iou) if o <= 0.3]
    return out


def session(model):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so)


def run(model, frames):
    s = session(model)
    outs = [s.run(["regressors", "classificators"], {"input": x}) for x in frames]
    return [(r[0].reshape(-1, 16), c[0].ravel()) for r, c in outs]


def bypass(qdq, tensors):
    """`qdq` with the activations in `tensors` left float (Relu where the pair clamped at 0)."""
    m = onnx.ModelProto()
    m.CopyFrom(qdq)
    zero = {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer}
    quantized, nodes = {}, []
    for n in m.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] in tensors:
            relu = zero[n.input[2]].dtype == np.int8 and int(zero[n.input[2]].ravel()[0]) == -128
            quantized[n.output[0]] = (n.input[0], "Relu" if relu else "Identity")
            continue
        if n.op_type == "DequantizeLinear" and n.input[0] in quantized:
            src, op = quantized[n.input[0]]
            nodes.append(onnx.helper.make_node(op, [src], [n.output[0]]))
            continue
        nodes.append(n)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    return m


def convs_into_adds(qdq):
    """The conv outputs an Add reads (through their QuantizeLinear/DequantizeLinear)."""
    quantized = {n.output[0]: n.input[0] for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    dequantized = {n.output[0]: quantized.get(n.input[0]) for n in qdq.graph.node if n.op_type == "DequantizeLinear"}
    made_by = {o: n.op_type for n in qdq.graph.node for o in n.output}
    read = {dequantized.get(i) for n in qdq.graph.node if n.op_type == "Add" for i in n.input}
    return {v for v in read if v is not None and made_by.get(v) == "Conv"}


def weights_at(float_model, bits, keep=()):
    """The float model with every conv's weights but `keep` rounded per output channel to
    `bits`."""
    m = onnx.ModelProto()
    m.CopyFrom(float_model)
    convs = {n.input[1] for n in m.graph.node if n.op_type == "Conv"} - set(keep)
    top = 2 ** (bits - 1) - 1
    for init in m.graph.initializer:
        if init.name in convs:
            w = onnx.numpy_helper.to_array(init).astype(np.float32)
            s = np.abs(w).reshape(len(w), -1).max(1).reshape(-1, *[1] * (w.ndim - 1)) / top
            s[s == 0] = 1
            init.CopyFrom(onnx.numpy_helper.from_array((np.round(w / s) * s).astype(np.float32), init.name))
    return m


def conv_inputs(model, frames):
    """The model's convs and, per frame, the float tensors they read."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    have = {o.name for o in m.graph.output} | {"input"}
    for t in dict.fromkeys(n.input[0] for n in convs):
        if t not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    s, names = session(m), [o.name for o in m.graph.output]
    return convs, [dict(zip(names, s.run(names, {"input": x})), input=x) for x in frames]


def conv_alone(node, w):
    """A session running `node` alone with weights `w` and no bias: x -> y."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    value = lambda name: onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
    graph = onnx.helper.make_graph([onnx.helper.make_node("Conv", ["x", "w"], ["y"], **attrs)], "conv",
                                   [value("x")], [value("y")], [onnx.numpy_helper.from_array(w, "w")])
    return session(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 11)]))


def bias_corrected(float_model, bits, convs_and_inputs):
    """`weights_at(float_model, bits)` with each conv's bias less the mean shift its weights'
    rounding puts on its output channels over the frames of `conv_inputs(float_model, ..)`."""
    m = weights_at(float_model, bits)
    rounded = {i.name: i for i in m.graph.initializer}
    exact = {i.name: onnx.numpy_helper.to_array(i) for i in float_model.graph.initializer}
    convs, inputs = convs_and_inputs
    for n in convs:
        w, b = n.input[1], n.input[2]
        error = conv_alone(n, onnx.numpy_helper.to_array(rounded[w]) - exact[w])
        shift = np.mean([error.run(["y"], {"x": x[n.input[0]]})[0].mean((0, 2, 3)) for x in inputs], 0)
        rounded[b].CopyFrom(onnx.numpy_helper.from_array((exact[b] - shift).astype(np.float32), b))
    return m


def calibration_frames(photos):
    """The frames `scripts/blazeface-int8.sh` calibrates on: the demo and the photos, whole."""
    return [letterbox(Image.open(p).convert("RGB")) for p in photo_paths(photos)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--float", default=os.path.join(ROOT, "models/blazeface_short.onnx"))
    ap.add_argument("--qdq", default=os.path.join(ROOT, "models/blazeface_short.qdq.onnx"))
    ap.add_argument("--photos", default=os.path.join(ROOT, "../shared/data/photos"))
    ap.add_argument("--each", action="store_true", help="bypass one activation at a time too")
    ap.add_argument("--each-weight", action="store_true", help="keep one conv's weights float at a time")
    a = ap.parse_args()
    frames = replay_frames(a.photos)
    fm, qdq = onnx.load(a.float), onnx.load(a.qdq)
    ref = run(fm, frames)
    ref_faces = [faces(r, c) for r, c in ref]
    ref_logits = np.stack([c for _, c in ref])
    near = np.abs(ref_logits) < 2
    print(f"{len(frames)} frames, {sum(map(len, ref_faces))} faces in float, "
          f"{near.sum()} score logits within +-2 of the threshold")

    def report(tag, model, inputs=frames):
        out = run(model, inputs)
        off = sum(len(faces(r, c)) != len(f) for (r, c), f in zip(out, ref_faces))
        d = (np.stack([c for _, c in out]) - ref_logits)[near]
        print(f"{tag:44s} {off:3d} frames with another face count; "
              f"near-threshold logits: RMS {np.sqrt((d * d).mean()):.3f}, mean {d.mean():+.3f}", flush=True)

    acts = [n.input[0] for n in qdq.graph.node if n.op_type == "QuantizeLinear"]
    rng = np.random.default_rng(0)
    # One pixel level is 1/127.5 after the input map; the letterbox bars (exact 0) stay black.
    noisy = [x + rng.uniform(-1, 1, x.shape).astype(np.float32) / 127.5 * (x != 0) for x in frames]
    report("float, input +-1 pixel level of noise", fm, noisy)
    report("all int8 (the QDQ twin)", qdq)
    report("activations float, weights int8", bypass(qdq, set(acts) - {"input"}))
    report("input too float", bypass(qdq, set(acts)))
    into_adds = convs_into_adds(qdq)
    report(f"the {len(into_adds)} conv outputs Adds read float", bypass(qdq, into_adds))
    for bits in (8, 9, 10, 12, 16):
        report(f"weights at {bits} bits (max-abs), activations float", weights_at(fm, bits))
    # The float convs' inputs, once per frame set, for both widths.
    measured_on = {"calibration": conv_inputs(fm, calibration_frames(a.photos)), "these frames": conv_inputs(fm, frames)}
    for bits in (8, 9):
        for where, convs_and_inputs in measured_on.items():
            report(f"... {bits} bits + bias correction ({where})", bias_corrected(fm, bits, convs_and_inputs))
    if a.each:
        for t in acts:
            report(f"only {t} float", bypass(qdq, {t}))
    if a.each_weight:
        for n in fm.graph.node:
            if n.op_type == "Conv":
                report(f"8-bit weights but {n.input[1]}", weights_at(fm, 8, keep=[n.input[1]]))


if __name__ == "__main__":
    main()
