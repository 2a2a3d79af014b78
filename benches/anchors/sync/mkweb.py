#!/usr/bin/env python3
"""Make a seeded web root for the mirror's link benchmarks: KIND = text (PHP, HTML, CSS and JS
files, 2-60 KiB, code-like text with identifiers, strings, numbers and comments that do not
repeat whole lines) or jpeg (photos-like JPEGs, 30-400 KiB, quality 85, from smooth noise).

Usage: mkweb.py KIND DIR N
Needs: python3; for jpeg also python3-pil (apt-get install -y python3 python3-pil)."""
import os, random, sys

if len(sys.argv) != 4 or sys.argv[1] not in ("text", "jpeg"):
    sys.exit(__doc__)
kind, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(7)
SYL = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "da", "ge", "ho", "ju", "bi", "ze", "fa",
       "ul", "or", "en", "as", "it", "um", "ex", "pr", "st", "ch", "qu", "an", "el", "on"]

def word():
    return "".join(rng.choice(SYL) for _ in range(rng.randint(1, 4)))

WORDS = [word() for _ in range(3000)]
IDENTS = [rng.choice(WORDS) + rng.choice(["", "_" + rng.choice(WORDS), rng.choice(WORDS).capitalize()])
          for _ in range(1500)]

def ident():
    return rng.choice(IDENTS)

def sentence(k=None):
    return " ".join(rng.choice(WORDS) for _ in range(k or rng.randint(3, 12)))

def php(size):
    out = ["<?php\n", f"namespace App\\{ident().capitalize()};\n\n"]
    while sum(map(len, out)) < size:
        name = ident()
        args = ", ".join(f"${ident()}" for _ in range(rng.randint(0, 3)))
        out.append(f"/**\n * {sentence()}\n * @return {rng.choice(['array', 'string', 'int', 'bool'])}\n */\n")
        out.append(f"function {name}({args})\n{{\n")
        for _ in range(rng.randint(2, 9)):
            choice = rng.random()
            if choice < 0.3:
                out.append(f"    ${ident()} = ${ident()}->{ident()}('{sentence(rng.randint(1, 4))}', {rng.randint(0, 9999)});\n")
            elif choice < 0.5:
                out.append(f"    if (${ident()} {rng.choice(['==', '!==', '>', '<='])} {rng.randint(0, 500)}) {{\n        return ${ident()}['{ident()}'];\n    }}\n")
            elif choice < 0.7:
                out.append(f"    // {sentence()}\n")
            elif choice < 0.85:
                out.append(f"    foreach (${ident()} as ${ident()} => ${ident()}) {{\n        echo htmlspecialchars(${ident()});\n    }}\n")
            else:
                out.append(f"    $sql = \"SELECT {ident()}, {ident()} FROM {ident()} WHERE {ident()} = ?\";\n")
        out.append(f"    return ${ident()};\n}}\n\n")
    return "".join(out)

def html(size):
    out = ["<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
           f"<title>{sentence(4)}</title>\n<link rel=\"stylesheet\" href=\"/css/{ident()}.css\">\n</head>\n<body>\n"]
    while sum(map(len, out)) < size:
        tag = rng.choice(["div", "section", "article", "ul", "p"])
        out.append(f"<{tag} class=\"{ident()} {ident()}\" id=\"{ident()}-{rng.randint(1, 999)}\">\n")
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.5:
                out.append(f"  <a href=\"/{ident()}/{rng.randint(1, 99999)}\">{sentence(rng.randint(2, 6))}</a>\n")
            else:
                out.append(f"  <p>{sentence(rng.randint(8, 30))}.</p>\n")
        out.append(f"</{tag}>\n")
    out.append("</body>\n</html>\n")
    return "".join(out)

def css(size):
    out = []
    props = ["margin", "padding", "color", "background", "font-size", "border", "display", "width", "line-height"]
    while sum(map(len, out)) < size:
        out.append(f".{ident()} {rng.choice(['', '.' + ident() + ' ', '> ' + rng.choice(['a', 'p', 'li']) + ' '])}{{\n")
        for _ in range(rng.randint(2, 7)):
            prop = rng.choice(props)
            value = rng.choice([f"{rng.randint(0, 64)}px", f"#{rng.randrange(1 << 24):06x}", f"{rng.randint(1, 300) / 100}em",
                                "none", "block", "flex", f"{rng.randint(1, 4)}px solid #{rng.randrange(1 << 24):06x}"])
            out.append(f"  {prop}: {value};\n")
        out.append("}\n\n")
    return "".join(out)

def js(size):
    out = ["'use strict';\n\n"]
    while sum(map(len, out)) < size:
        out.append(f"// {sentence()}\nfunction {ident()}({', '.join(ident() for _ in range(rng.randint(0, 3)))}) {{\n")
        for _ in range(rng.randint(2, 8)):
            choice = rng.random()
            if choice < 0.4:
                out.append(f"  const {ident()} = document.querySelector('#{ident()}');\n")
            elif choice < 0.7:
                out.append(f"  {ident()}.addEventListener('{rng.choice(['click', 'input', 'load'])}', () => {ident()}({rng.randint(0, 999)}));\n")
            else:
                out.append(f"  if ({ident()}.{ident()} > {rng.randint(0, 100)}) return '{sentence(rng.randint(1, 5))}';\n")
        out.append("}\n\n")
    return "".join(out)

def jpeg(path, rng):
    from PIL import Image, ImageFilter
    w, h = rng.choice([(640, 480), (800, 600), (1024, 768), (1280, 960)])
    small = Image.frombytes("RGB", (w // 16, h // 16), rng.randbytes((w // 16) * (h // 16) * 3))
    image = small.resize((w, h), Image.BICUBIC)
    noise = Image.frombytes("RGB", (w, h), rng.randbytes(w * h * 3)).filter(ImageFilter.GaussianBlur(1.2))
    Image.blend(image, noise, 0.25).save(path, "JPEG", quality=85)

makers = [("php", php), ("html", html), ("css", css), ("js", js)]
for i in range(n):
    d = os.path.join(root, f"d{i % 17}", f"s{i % 5}")
    os.makedirs(d, exist_ok=True)
    if kind == "text":
        ext, make = makers[i % 4]
        size = int(rng.choice([2, 4, 8, 16, 32, 60]) * 1024 * rng.uniform(0.7, 1.0))
        with open(os.path.join(d, f"f{i}.{ext}"), "w") as f:
            f.write(make(size))
    else:
        jpeg(os.path.join(d, f"p{i}.jpg"), rng)
