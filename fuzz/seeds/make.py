"""Writes the seed files of the image, stream and dataset fuzz targets, from the demo photo
(NASA, public domain): python3 fuzz/seeds/make.py (needs Pillow)."""
import io
import pathlib

from PIL import Image

here = pathlib.Path(__file__).parent
photo = Image.open(here.parent.parent / "demo" / "astronaut.jpg").convert("RGB")
face = photo.crop((photo.width // 4, 0, photo.width * 3 // 4, photo.width // 2))


def encoded(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def write(path, data):
    path = here / path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


small = face.resize((24, 24))
gray48 = face.convert("L").resize((48, 48))
pixels = " ".join(str(p) for p in gray48.get_flattened_data())

# image_decode: each format the commands read, in colour and gray, and a cut-off JPEG.
jpg = encoded(small, "JPEG", quality=80)
write("image_decode/face.jpg", jpg)
write("image_decode/face-gray.jpg", encoded(small.convert("L"), "JPEG", quality=80))
write("image_decode/face-progressive.jpg", encoded(small, "JPEG", progressive=True))
write("image_decode/face.png", encoded(small, "PNG"))
write("image_decode/face-gray16.png", encoded(small.convert("I;16"), "PNG"))
write("image_decode/face-rgba.png", encoded(small.convert("RGBA"), "PNG"))
write("image_decode/face.bmp", encoded(small, "BMP"))
write("image_decode/face-truncated.jpg", jpg[: len(jpg) // 2])

# mjpeg_stream: the first byte is the read size; then frames, a damaged one among them.
frames = [encoded(face.resize((16 + 8 * i, 16)), "JPEG", quality=60) for i in range(3)]
write("mjpeg_stream/three-frames", bytes([7]) + b"".join(frames))
write("mjpeg_stream/damaged-middle", bytes([200]) + frames[0] + frames[1][:40] + frames[2])
write("mjpeg_stream/joined-mid-frame", bytes([0]) + frames[0][30:] + frames[1])

# fer_csv: FER2013's columns, a bad row among good ones, CRLF line ends.
rows = [
    "emotion,pixels,Usage",
    f"3,{pixels},Training",
    f"6,{pixels},PublicTest",
    "9,1 2 3,Training",
    f"0,{pixels},PrivateTest",
]
write("fer_csv/fer2013.csv", ("\n".join(rows) + "\n").encode())
write("fer_csv/crlf.csv", ("\r\n".join(rows[:3]) + "\r\n").encode())
write("fer_csv/no-usage.csv", f"emotion,pixels\n4,{pixels}\n".encode())

# manifest: rows naming the folder's image and rows of its FER2013 CSV (files/).
write("files/face.png", encoded(gray48, "PNG"))
write("files/rows.csv", ("\n".join(rows) + "\n").encode())
write("manifest/paths.csv", b"path,label,subject\nface.png,happy,S010\nface.png,3,S011\nmissing.png,sad,\n")
write("manifest/csv-rows.csv", b"path,label,usage\nrows.csv#L2,happy,training\nrows.csv#L4,sad,PublicTest\n")
write("manifest/subject-regex.csv", b"path,label\nS010_004_00000017.png,fear\nface.png,contempt\n")
