/** The framed digest: unambiguous, order-sensitive where it must be, and settings order-free. */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { frameDigest, settingsDigest } from "../../lib/hashing/digest";
import { releaseIdOf, appTag, baseTag } from "../../lib/plan";

void test("property: different record lists give different digests (framing has no separator ambiguity)", () => {
    const recs = fc.array(fc.array(fc.string({ maxLength: 6 }), { maxLength: 4 }), { maxLength: 4 });
    fc.assert(
        fc.property(recs, recs, (a, b) => {
            fc.pre(JSON.stringify(a) !== JSON.stringify(b));
            assert.notEqual(frameDigest("d", a), frameDigest("d", b));
        }),
        { numRuns: 500 },
    );
    // The classic concatenation collisions:
    assert.notEqual(frameDigest("d", [["ab", "c"]]), frameDigest("d", [["a", "bc"]]));
    assert.notEqual(frameDigest("d", [["a"], ["b"]]), frameDigest("d", [["a", "b"]]));
    assert.notEqual(frameDigest("d", [["x"]]), frameDigest("e", [["x"]]));
});

void test("property: settings hash ignores insertion order, sees every name and value", () => {
    fc.assert(
        fc.property(fc.dictionary(fc.stringMatching(/^[A-Z_]{1,8}$/), fc.string({ maxLength: 8 }), { minKeys: 1 }), (d) => {
            const reversed = Object.fromEntries(Object.entries(d).reverse());
            assert.equal(settingsDigest(d), settingsDigest(reversed));
            const k = Object.keys(d)[0];
            assert.notEqual(settingsDigest({ ...d, [k]: d[k] + "x" }), settingsDigest(d));
        }),
    );
});

void test("tags and release id are derived from the hashes", () => {
    const h = "0123456789abcdef".repeat(4);
    assert.equal(baseTag(h), "deps-0123456789ab");
    assert.equal(appTag(h), "app-0123456789ab");
    assert.match(releaseIdOf(h, h), /^rel-[0-9a-f]{12}$/);
    assert.notEqual(releaseIdOf(h, h), releaseIdOf(h, "f".repeat(64)));
});

void test("property: byteOrder sorts by UTF-8 bytes, for ASCII and non-ASCII keys alike", async () => {
    const { byteOrder } = await import("../../lib/hashing/digest");
    fc.assert(
        fc.property(fc.array(fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.stringMatching(/^[a-z/._-]{0,8}$/))), (keys) => {
            const got = byteOrder(keys, (k) => k);
            const want = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
            assert.deepEqual(
                got.map((k) => Buffer.from(k).toString("hex")),
                want.map((k) => Buffer.from(k).toString("hex")),
            );
        }),
        { numRuns: 300 },
    );
});
