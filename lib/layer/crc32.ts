/**
 * crc32_combine, as zlib has it (crc32.c: multmodp, x2nmodp) and Node's zlib does not expose: the
 * CRC-32 of A followed by B from crc(A), crc(B) and B's length, in O(log len) steps. The layer
 * writer uses it for a reused chunk, whose tar bytes' crc32 its record keeps, instead of running
 * crc32 over those bytes again for the gzip trailer.
 */

/** The reflected CRC-32 polynomial (gzip's). */
const POLY = 0xedb88320;

/** a(x) * b(x) modulo p(x), the polynomials reflected as zlib holds them. */
function multmodp(a: number, b: number): number {
    let m = 0x80000000;
    let p = 0;
    for (;;) {
        if ((a & m) !== 0) {
            p ^= b;
            if ((a & (m - 1)) === 0) break;
        }
        m >>>= 1;
        b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
    }
    return p >>> 0;
}

/** x^(2^k) modulo p(x), for k = 0..31. */
const X2N = (() => {
    const t = new Uint32Array(32);
    let p = 1 << 30; // x^1
    t[0] = p;
    for (let n = 1; n < 32; n++) t[n] = p = multmodp(p, p);
    return t;
})();

/** x^(n * 2^k) modulo p(x). */
function x2nmodp(n: number, k: number): number {
    let p = 0x80000000; // x^0
    while (n > 0) {
        if (n % 2 === 1) p = multmodp(X2N[k & 31], p);
        n = Math.floor(n / 2);
        k++;
    }
    return p;
}

/** The crc32 of A then B, given crc32(A), crc32(B) and B's length in bytes (any safe integer). */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
    return (multmodp(x2nmodp(lengthB, 3), crcA >>> 0) ^ (crcB >>> 0)) >>> 0;
}
