// crc32Combine (lib/layer/crc32.ts) against zlib's crc32 of the concatenation: random splits,
// empty parts, and a second part past 4 GiB (a layer's tar can be that large).
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import * as zlib from "node:zlib";
import { crc32Combine } from "../../lib/layer/crc32";

void test("crc32Combine(crc(A), crc(B), |B|) is crc(A then B)", () => {
    const cases: Array<[number, number]> = [
        [0, 0],
        [0, 1],
        [1, 0],
        [1, 1],
        [32 * 1024, 256 * 1024],
    ];
    for (let i = 0; i < 200; i++) cases.push([randomInt(0, 70_000), randomInt(0, 300_000)]);
    for (const [a, b] of cases) {
        const A = randomBytes(a);
        const B = randomBytes(b);
        assert.equal(crc32Combine(zlib.crc32(A), zlib.crc32(B), b), zlib.crc32(Buffer.concat([A, B])), `|A| ${a}, |B| ${b}`);
    }
    // Chained over many parts, as the layer writer folds its chunks.
    const parts = Array.from({ length: 50 }, () => randomBytes(randomInt(1, 40_000)));
    const folded = parts.reduce((crc, p) => crc32Combine(crc, zlib.crc32(p), p.length), 0);
    assert.equal(folded, zlib.crc32(Buffer.concat(parts)));
});

void test("crc32Combine: a second part longer than 4 GiB", () => {
    const A = randomBytes(1000);
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    const n = 65; // 65 x 64 MiB = 4 GiB + 64 MiB
    let crcB = 0;
    for (let i = 0; i < n; i++) crcB = zlib.crc32(zeros, crcB);
    let whole = zlib.crc32(A);
    for (let i = 0; i < n; i++) whole = zlib.crc32(zeros, whole);
    assert.equal(crc32Combine(zlib.crc32(A), crcB, n * zeros.length), whole);
});
