/**
 * The provenance statement (pure): thinlayer's input record of one image as an in-toto Statement
 * v1, its canonical bytes, and the comparison `thinlayer verify` prints.
 *
 * Canonical bytes: JSON with object keys sorted and no whitespace, no timestamps; the same inputs
 * always give the same bytes, so a second ensure finds the same statement already attached.
 */
import { DIGEST } from "../rules";

const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const PREDICATE_TYPE = "https://thinlayer.dev/inputs/v1";
/** The artifactType of the OCI artifact, and the DSSE payloadType. */
export const IN_TOTO_MEDIA_TYPE = "application/vnd.in-toto+json";
export const DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json";

/** One input file as the attestation records it. */
export interface RecordedFile {
    path: string;
    sha256: string;
    executable: boolean;
}

/** The predicate: what the image was built from. */
export interface InputRecord {
    role: "base" | "app";
    /** The content hash (64 hex) the tag is derived from. */
    hash: string;
    tag: string;
    platform: string;
    /** POSIX path relative to the build context (may start with ../ when outside it). */
    dockerfile: { path: string; sha256: string };
    /** Sorted by name (app: BASE_IMAGE is the base ref, recorded under `base`, not here). */
    buildArgs: Record<string, string>;
    /** The FROM (and COPY --from/mount from=) image references, in Dockerfile order. */
    from: string[];
    /** App only: the base image it is built on. */
    base?: { hash: string; ref: string; digest: string };
    /** Sorted by path bytes (the plan's order). */
    files: RecordedFile[];
    thinlayer: { version: string };
    /** The git commit when the work tree was clean; `{ dirty: true }` otherwise; absent outside git. */
    source?: { commit: string } | { dirty: true };
}

export interface Statement {
    _type: typeof STATEMENT_TYPE;
    subject: Array<{ name: string; digest: { sha256: string } }>;
    predicateType: typeof PREDICATE_TYPE;
    predicate: InputRecord;
}

/** JSON with sorted object keys and no whitespace (arrays keep their order). */
export function canonicalJson(v: unknown): string {
    if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
    if (v !== null && typeof v === "object") {
        const o = v as Record<string, unknown>;
        const keys = Object.keys(o)
            .filter((k) => o[k] !== undefined)
            .sort();
        return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
    }
    return JSON.stringify(v);
}

/** The statement for image `name` (host/repo) at `digest` (sha256:…). */
export function buildStatement(name: string, digest: string, record: InputRecord): Statement {
    if (!DIGEST.test(digest)) throw new Error(`subject digest must be sha256:<64 hex>, got ${JSON.stringify(digest)}`);
    return { _type: STATEMENT_TYPE, subject: [{ name, digest: { sha256: digest.slice("sha256:".length) } }], predicateType: PREDICATE_TYPE, predicate: record };
}

export function statementBytes(s: Statement): Buffer {
    return Buffer.from(canonicalJson(s), "utf8");
}

/** Parses and shape-checks a statement of ours; throws naming what is wrong. */
export function parseStatement(bytes: Buffer): Statement {
    const s = JSON.parse(bytes.toString("utf8")) as Partial<Statement>;
    if (s._type !== STATEMENT_TYPE) throw new Error(`not an in-toto Statement v1 (_type ${JSON.stringify(s._type)})`);
    if (s.predicateType !== PREDICATE_TYPE) throw new Error(`predicateType ${JSON.stringify(s.predicateType)}, expected ${PREDICATE_TYPE}`);
    const p = s.predicate as Partial<InputRecord> | undefined;
    if (!p || !Array.isArray(p.files) || typeof p.hash !== "string" || !p.dockerfile)
        throw new Error("predicate is not a thinlayer input record (files, hash, dockerfile)");
    return s as Statement;
}

export interface RecordDiff {
    added: string[];
    removed: string[];
    changed: Array<{ path: string; what: string }>;
    /** Other fields that differ: [field, attested, checkout]. */
    fields: Array<{ field: string; attested: string; checkout: string }>;
}

/** What differs between the attested record and the one recomputed from the checkout. */
export function diffRecords(attested: InputRecord, checkout: InputRecord): RecordDiff {
    const a = new Map(attested.files.map((f) => [f.path, f]));
    const c = new Map(checkout.files.map((f) => [f.path, f]));
    const added = [...c.keys()].filter((p) => !a.has(p));
    const removed = [...a.keys()].filter((p) => !c.has(p));
    const changed: RecordDiff["changed"] = [];
    for (const [p, fa] of a) {
        const fc = c.get(p);
        if (!fc) continue;
        const what = [fa.sha256 !== fc.sha256 ? "content" : "", fa.executable !== fc.executable ? `executable ${fa.executable} -> ${fc.executable}` : ""]
            .filter(Boolean)
            .join(", ");
        if (what) changed.push({ path: p, what });
    }
    const fields: RecordDiff["fields"] = [];
    const cmp = (field: string, x: unknown, y: unknown) => {
        const [sx, sy] = [canonicalJson(x ?? null), canonicalJson(y ?? null)];
        if (sx !== sy) fields.push({ field, attested: sx, checkout: sy });
    };
    cmp("role", attested.role, checkout.role);
    cmp("dockerfile.path", attested.dockerfile.path, checkout.dockerfile.path);
    cmp("dockerfile.sha256", attested.dockerfile.sha256, checkout.dockerfile.sha256);
    cmp("buildArgs", attested.buildArgs, checkout.buildArgs);
    cmp("platform", attested.platform, checkout.platform);
    cmp("from", attested.from, checkout.from);
    cmp("base.hash", attested.base?.hash, checkout.base?.hash);
    // The content hash covers what the lists above cannot show (followed links, empty directories).
    cmp("hash", attested.hash, checkout.hash);
    return { added, removed, changed, fields };
}

export function isSame(d: RecordDiff): boolean {
    return d.added.length + d.removed.length + d.changed.length + d.fields.length === 0;
}

/** Lines for the CLI. */
export function formatDiff(d: RecordDiff): string[] {
    return [
        ...d.added.map((p) => `  added    ${p}`),
        ...d.removed.map((p) => `  removed  ${p}`),
        ...d.changed.map((c) => `  changed  ${c.path} (${c.what})`),
        ...d.fields.map((f) => `  field    ${f.field}: attested ${f.attested}, checkout ${f.checkout}`),
    ];
}
