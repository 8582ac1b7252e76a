#!/usr/bin/env python3
# A binary PPM (P6, comment lines allowed) to PNG, with the standard library only:
#   scripts/ppm-to-png.py firmware/fer-screen.ppm docs/img/firmware-screen.png
import sys, zlib, struct
data = open(sys.argv[1], 'rb').read()
fields = []; at = 0
while len(fields) < 4:
    end = data.index(b'\n', at); line = data[at:end]; at = end + 1
    if not line.startswith(b'#'): fields += line.split()
w, h = int(fields[1]), int(fields[2]); px = data[at:]
raw = b''.join(b'\x00' + px[y*w*3:(y+1)*w*3] for y in range(h))
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
open(sys.argv[2], 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))
