#!/usr/bin/env python3
"""Accuracy of `fer predict --json` on a class-folder dataset (each image's class is its
folder's name), scoring each image's most confident face; images without a face are
counted apart. With a second file (the same images, another setting), also the faces
whose eye line rolls past ROLL degrees (default 25) in the first, right in each file:

    fer predict ../shared/data/fer2013/public_test --json > a.json
    fer predict ../shared/data/fer2013/public_test --json --no-align > b.json
    python3 scripts/predict-accuracy.py a.json b.json [ROLL]
"""
import json
import math
import sys


def best_face(image):
    return max(image["faces"], key=lambda f: f["score"]) if image["faces"] else None


def roll_degrees(face):
    (rx, ry), (lx, ly) = face["keypoints"][:2]
    return abs(math.degrees(math.atan2(ly - ry, lx - rx)))


def right(image, face):
    return face is not None and face["label"] == image["path"].replace("\\", "/").split("/")[-2]


def main():
    a = json.load(open(sys.argv[1]))
    faces = [(im, best_face(im)) for im in a]
    found = [(im, f) for im, f in faces if f is not None]
    n_right = sum(right(im, f) for im, f in found)
    print(f"{sys.argv[1]}: a face in {len(found)} of {len(a)} images; "
          f"{n_right} read right ({100 * n_right / max(len(found), 1):.2f}%)")
    if len(sys.argv) < 3:
        return
    b = json.load(open(sys.argv[2]))
    limit = float(sys.argv[3]) if len(sys.argv) > 3 else 25.0
    rolled = [(ia, fa, ib) for (ia, fa), ib in zip(faces, b) if fa is not None and roll_degrees(fa) > limit]
    in_a = sum(right(ia, fa) for ia, fa, _ in rolled)
    in_b = sum(right(ib, best_face(ib)) for _, _, ib in rolled)
    print(f"faces rolled past {limit:g} degrees: {len(rolled)}; right in {sys.argv[1]}: {in_a}, "
          f"in {sys.argv[2]}: {in_b}")


if __name__ == "__main__":
    main()
