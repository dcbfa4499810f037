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
    writeField(h, domain);
    for (const rec of records) {
        h.update(`R${rec.length}\n`);
        for (const f of rec) writeField(h, f);
    }
    h.update(`E${records.length}\n`);
    return h.digest("hex");
}

function writeField(h: ReturnType<typeof createHash>, f: Field): void {
    const b = typeof f === "string" ? Buffer.from(f, "utf8") : f;
    h.update(`${b.length}:`);
    h.update(b);
}

/** Sorts by the UTF-8 bytes of a key, the same on every machine and locale. */
export function byteOrder<T>(items: readonly T[], key: (x: T) => string): T[] {
    return [...items].sort((a, b) => Buffer.compare(Buffer.from(key(a)), Buffer.from(key(b))));
}

/** Hash of NAME=VALUE settings, independent of their order. */
export function settingsDigest(values: Record<string, string>): string {
    return frameDigest(
        "thinlayer-settings-v1",
        byteOrder(Object.entries(values), ([k]) => k).map(([k, v]) => ["setting", k, v]),
    );
}
