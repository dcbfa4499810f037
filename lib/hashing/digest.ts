/**
 * The framed digest: sha256 over a domain tag and a list of records, each record a list of
 * fields. Every field is written as `<byte length>:<bytes>` and every record ends with a count,
 * so no two different lists can produce the same byte stream (no separator ambiguity, whatever
 * bytes a path or a build arg holds).
 */
import { createHash } from "node:crypto";

export type Field = string | Buffer;
export type Record_ = readonly Field[];

/** sha256 hex over the framed encoding of `records` under `domain`. */
export function frameDigest(domain: string, records: readonly Record_[]): string {
    const h = createHash("sha256");
    // Text fields are batched into one string per ~64 KiB: one update() per field would dominate
    // the cost on 20,000-file trees. Lengths are UTF-8 byte lengths either way.
    let pending = field(domain);
    for (const rec of records) {
        pending += `R${rec.length}\n`;
        for (const f of rec) {
            if (typeof f === "string") {
                pending += field(f);
            } else {
                h.update(pending);
                pending = "";
                h.update(`${f.length}:`);
                h.update(f);
            }
        }
        if (pending.length > 65536) {
            h.update(pending);
            pending = "";
        }
    }
    h.update(pending + `E${records.length}\n`);
    return h.digest("hex");
}

function field(s: string): string {
    return `${Buffer.byteLength(s, "utf8")}:${s}`;
}

/**
 * Sorts by the UTF-8 bytes of a key, the same on every machine and locale. ASCII keys (the usual
 * case) compare as JS strings, which is the same order; others compare as UTF-8 buffers.
 */
export function byteOrder<T>(items: readonly T[], key: (x: T) => string): T[] {
    const keyed = items.map((x) => ({ x, k: key(x) }));
    if (!keyed.some(({ k }) => /[\u0080-\uffff]/.test(k))) {
        keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
    } else {
        const bufs = new Map(keyed.map(({ k }) => [k, Buffer.from(k, "utf8")]));
        keyed.sort((a, b) => Buffer.compare(bufs.get(a.k) as Buffer, bufs.get(b.k) as Buffer));
    }
    return keyed.map(({ x }) => x);
}

/** Hash of NAME=VALUE settings, independent of their order. */
export function settingsDigest(values: Record<string, string>): string {
    return frameDigest(
        "thinlayer-settings-v1",
        byteOrder(Object.entries(values), ([k]) => k).map(([k, v]) => ["setting", k, v]),
    );
}

/** The OCI content digest of some bytes: `sha256:<64 hex>` (blobs, manifests, statements). */
export function sha256(bytes: Buffer): string {
    return "sha256:" + createHash("sha256").update(bytes).digest("hex");
}
