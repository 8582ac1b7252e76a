#!/usr/bin/env python3
"""LiteRT (TensorFlow Lite's runtime, XNNPACK) as a peer of `fer bench`.

Times one `.tflite` model on one thread, batch 1, the same way `fer bench` times its
backends (warm-up, then the median of `--reps` runs), and prints one JSON line:
{"us": median microseconds, "runtime": "...", "input": [...]}. `fer bench --litert
benches/litert_peer.py --tflite MODEL.tflite` runs it in the same invocation.

Needs `pip install ai-edge-litert` (PyPI; its wheel ships the runtime and XNNPACK).
"""
import argparse
import json
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a .tflite file")
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    import numpy as np
    import ai_edge_litert
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=a.model, num_threads=a.threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    shape = [int(d) for d in inp["shape"]]
    n = int(np.prod(shape))
    # The repeatable pattern `fer bench` feeds its backends, in this model's layout.
    x = (((np.arange(n) * 37 + (np.arange(n) // 48) * 11) % 255) / 255.0).astype(inp["dtype"]).reshape(shape)

    def run():
        interp.set_tensor(inp["index"], x)
        interp.invoke()

    for _ in range(a.reps // 10 + 5):
        run()
    times = []
    for _ in range(a.reps):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    version = getattr(ai_edge_litert, "__version__", "?")
    print(json.dumps({"us": times[len(times) // 2], "runtime": f"LiteRT {version} (XNNPACK)", "input": shape}))


if __name__ == "__main__":
    main()
