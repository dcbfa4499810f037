/**
 * One reproducible image layer from build-context files: the same inputs give the same bytes, so
 * the same diffID, blob digest, manifest digest — and no rollout.
 *
 * - entries sorted by path, each parent directory present, no duplicates (a later COPY wins);
 * - ustar headers, PAX for what ustar cannot hold (lib/layer/tar.ts), written with the files'
 *   bytes straight into the pending tar of the deflate chunks;
 * - fixed mtime (SOURCE_DATE_EPOCH when set, else 0), empty user/group names;
 * - owner/mode from COPY --chown/--chmod, else root 0:0, files 0644 (0755 when executable), dirs 0755
 *   (only the executable bit of a source file is kept: the content hash ignores the other mode bits,
 *   so the image must too, or two checkouts with different umasks would build different images);
 * - one gzip member (no name, mtime 0) whose deflate stream is made of chunks cut where the tar's
 *   content says (chunkCuts), each deflated on its own with the 32 KiB of tar before it as its
 *   dictionary and ended by a sync flush, as pigz does: deflated in parallel (see ParallelGzip) or
 *   reused from the last layer of the same app when their bytes and dictionary are unchanged
 *   (LayerReuse); a chunk whose sample does not compress is run-length coded only instead of
 *   deflated for nothing (chunkOptions).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as os from "node:os";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { crc32Combine } from "./crc32";
import { BLOCK, END_OF_TAR, headerBytes, padded, writeHeader, type TarHeader } from "./tar";
import type { CopySpec } from "../dockerfile/analyze";
import { inputError, ThinlayerError } from "../errors";
import { cleanSource, followedSource } from "../context/resolve";
import { goMatch, hasWildcard } from "../context/pathmatch";
import type { InputFile } from "../model";
import { cacheDir, identitySlotName } from "../hashing/filehash";

/** One entry of a layer, with its final metadata. */
export interface LayerEntry {
    /** Absolute POSIX path in the image, no trailing slash ("/app/manage.py"). */
    dest: string;
    type: "file" | "directory" | "symlink";
    /** File on disk (type file). */
    source?: string;
    /** Link target (type symlink). */
    linkname?: string;
    mode: number;
    uid: number;
    gid: number;
}

/** A written layer blob and its identities. */
export interface LayerBlob {
    /** The gzip file on disk ("" when kept in memory). */
    file: string;
    /** The gzip bytes, when written with `outFile` undefined (in memory). */
    data?: Buffer;
    /** sha256 of the uncompressed tar (goes in the config's rootfs.diff_ids). */
    diffId: string;
    /** sha256 of the gzip blob (goes in the manifest). */
    digest: string;
    /** Size of the gzip blob. */
    size: number;
    /** Size of the uncompressed tar. */
    tarSize: number;
    entries: number;
    /** Deflate chunks written: taken from the previous layer of the same slot, and deflated afresh. */
    chunks: { reused: number; deflated: number };
    /**
     * Settles (never rejects) once the layer is saved for the next write's reuse (LayerReuse): a
     * copy of the blob, written while the caller pushes it. Await it before exiting, and before
     * removing `file`.
     */
    saved: Promise<void>;
}

/**
 * gzip level used for every layer: part of the reproducibility contract. An app update deflates
 * only the chunks its edit touched (the others are reused, LayerReuse), so a high level costs
 * little CPU per deploy and saves bytes on every push: level 8 packs source text about 17% tighter
 * than level 2 and within 0.1% of level 9, at two thirds of level 9's time. A write with nothing to
 * reuse (a fresh machine) deflates everything at this level.
 * Measurements: docs/benchmarks.md, "gzip level".
 */
export const GZIP_LEVEL = 8;

/** The fixed timestamp (seconds) of every entry: SOURCE_DATE_EPOCH when set, else 0. */
export function layerEpoch(env: NodeJS.ProcessEnv = process.env): number {
    const s = env.SOURCE_DATE_EPOCH;
    return s !== undefined && /^\d+$/.test(s) ? Number(s) : 0;
}

/** Raised when a COPY uses something the daemonless path cannot reproduce (the builder handles it). */
export class NotDaemonlessError extends ThinlayerError {}

/** Parses `--chown=uid[:gid]` (numeric, or root). Names need the image's /etc/passwd: not daemonless. */
export function parseChown(chown: string | undefined): { uid: number; gid: number } {
    if (chown === undefined || chown === "") return { uid: 0, gid: 0 };
    const [u, g] = chown.split(":");
    const num = (x: string) => (x === "root" ? 0 : /^\d+$/.test(x) ? Number(x) : undefined);
    const uid = num(u);
    const gid = g === undefined ? uid : num(g);
    if (uid === undefined || gid === undefined) {
        throw new NotDaemonlessError(
            `--chown=${chown} names a user or group; a daemonless build needs numeric uid[:gid] (it never reads the base image's /etc/passwd)`,
        );
    }
    return { uid, gid };
}

/** Parses `--chmod=<octal>`. */
function parseChmod(chmod: string | undefined, where: string): number | undefined {
    if (chmod === undefined || chmod === "") return undefined;
    if (!/^[0-7]{3,4}$/.test(chmod)) {
        throw inputError({
            input: `${where} --chmod`,
            value: JSON.stringify(chmod),
            allowed: "an octal mode such as 0644 or 755",
            fix: "write the mode in octal",
        });
    }
    return parseInt(chmod, 8);
}

/** A COPY with the WORKDIR in force at its line (relative destinations resolve against it). */
export interface PlacedCopy extends CopySpec {
    workdir: string;
}

/**
 * Maps COPY instructions onto the context files (the dockerignore-filtered list the hash covers)
 * and returns the layer entries with their final owner and mode. A source matching nothing is an
 * input error naming the Dockerfile line and the pattern.
 */
export function copyEntries(contextDir: string, files: readonly InputFile[], copies: readonly PlacedCopy[], dockerfile = "Dockerfile"): LayerEntry[] {
    const out = new Map<string, LayerEntry>();
    const put = (e: LayerEntry) => {
        out.delete(e.dest); // re-insert so later COPYs win
        out.set(e.dest, e);
    };
    for (const c of copies) {
        const where = `${dockerfile}:${c.line}`;
        const { uid, gid } = parseChown(c.chown);
        const chmod = parseChmod(c.chmod, where);
        const destRaw = c.dest.startsWith("/") ? c.dest : path.posix.join(c.workdir, c.dest);
        const destIsDir = c.dest.endsWith("/") || c.dest === "." || c.sources.length > 1 || c.sources.some(hasWildcard);
        const dest = path.posix.normalize(destRaw).replace(/\/+$/, "") || "/";
        const fileEntry = (f: InputFile, to: string) =>
            put({ dest: to, type: "file", source: path.join(contextDir, f.path), mode: chmod ?? (f.executable ? 0o755 : 0o644), uid, gid });
        const dirEntry = (to: string) => put({ dest: to, type: "directory", mode: chmod ?? 0o755, uid, gid });
        /** Copies the contents of context dir `dir` ("." = the context) into `to`. */
        const copyDir = (dir: string, to: string): boolean => {
            const prefix = dir === "." ? "" : dir + "/";
            const inside = files.filter((f) => f.path.startsWith(prefix));
            if (inside.length === 0) return false;
            dirEntry(to);
            for (const f of inside) {
                const rel = f.path.slice(prefix.length);
                const parts = rel.split("/");
                for (let i = 1; i < parts.length; i++) dirEntry(path.posix.join(to, ...parts.slice(0, i)));
                fileEntry(f, path.posix.join(to, rel));
            }
            return true;
        };
        for (const raw of c.sources) {
            const src = cleanSource(raw) || ".";
            let matched = false;
            if (hasWildcard(src)) {
                const depth = src.split("/").length;
                const hits = new Set<string>();
                for (const f of files) {
                    const parts = f.path.split("/");
                    if (parts.length >= depth) {
                        const head = parts.slice(0, depth).join("/");
                        if (goMatch(src, head)) hits.add(head);
                    }
                }
                for (const h of [...hits].sort()) {
                    matched = true;
                    const f = files.find((x) => x.path === h);
                    if (f) fileEntry(f, path.posix.join(dest, path.posix.basename(h)));
                    // A matched directory's contents go into the destination, not the directory
                    // itself (BuildKit's CopyDirContentsOnly, as for a named directory).
                    else copyDir(h, dest);
                }
            } else {
                // A symlink named directly is followed: the target's content, under the link's name.
                const target = followedSource(contextDir, src);
                const f = files.find((x) => x.path === (target ?? src));
                if (f) {
                    matched = true;
                    fileEntry(f, destIsDir ? path.posix.join(dest, path.posix.basename(src)) : dest);
                } else {
                    matched = copyDir(src, dest);
                }
            }
            // A wildcard may match nothing (BuildKit's AllowEmptyWildcard): nothing is copied for it.
            if (!matched && !hasWildcard(src)) {
                throw inputError({
                    input: `${where} (${c.keyword} ${raw})`,
                    value: "a source that matches no file in the build context",
                    allowed: "a path or pattern matching at least one file not excluded by .dockerignore",
                    fix: `create the file, correct the path, or remove its .dockerignore exclusion (context: ${contextDir})`,
                });
            }
        }
    }
    return [...out.values()];
}

/** Adds missing parent directories (root 0:0, 0755), sorts by path. */
export function normalizeEntries(entries: readonly LayerEntry[]): LayerEntry[] {
    const byPath = new Map<string, LayerEntry>();
    for (const e of entries) byPath.set(e.dest, e);
    for (const e of entries) {
        for (let d = path.posix.dirname(e.dest); d !== "/" && d !== "."; d = path.posix.dirname(d)) {
            if (!byPath.has(d)) byPath.set(d, { dest: d, type: "directory", mode: 0o755, uid: 0, gid: 0 });
        }
    }
    // Byte order of the path: locale-independent.
    return [...byPath.values()].sort((a, b) => Buffer.compare(Buffer.from(a.dest), Buffer.from(b.dest)));
}

const deflateRawAsync = promisify(zlib.deflateRaw);

/**
 * Where the tar is cut into deflate chunks: part of the reproducibility contract, like GZIP_LEVEL.
 * Cuts are content-defined so that an edit changes only the chunks around it and every other
 * chunk keeps its exact bytes (and its compressed bytes can be reused, see LayerReuse):
 *   - a candidate is a tar header block: a 512-aligned block with the ustar magic at byte 257
 *     (an entry's start; a file whose content holds such a block only adds a candidate);
 *   - a chunk is cut before a candidate when it holds at least CHUNK_MIN_BYTES and the crc32 of
 *     the header's name field is 0 modulo CHUNK_SPREAD (so the choice depends on that entry alone);
 *   - a chunk reaching CHUNK_MAX_BYTES is cut there (large files).
 * A function of the tar bytes only, so any writer cuts the same tar the same way (chunkCuts).
 * Small chunks keep an edit's deflate short (it is what the push waits for); the shared
 * dictionary keeps them from costing bytes (see docs/benchmarks.md, "Deflate chunks").
 */
export const CHUNK_MIN_BYTES = 32 * 1024;
export const CHUNK_MAX_BYTES = 256 * 1024;
export const CHUNK_SPREAD = 4;

/**
 * The next cut in `b` after the chunk starting at `start` (512-aligned), scanning from `from`
 * (a 512-aligned offset past `start`): its offset, or -1 when `b` ends before one is decided (each
 * decision needs the whole block at the candidate). The rules above, looking at byte 257 of each
 * block first (a native search for the magic reads every byte: measured slower).
 */
function nextCut(b: Buffer, start: number, from: number): number {
    const forced = start + CHUNK_MAX_BYTES;
    for (let o = Math.max(from, start + CHUNK_MIN_BYTES); o + BLOCK <= b.length; o += BLOCK) {
        if (o >= forced) return o;
        if (b[o + 257] === 0x75 && b[o + 258] === 0x73 && b[o + 259] === 0x74 && b[o + 260] === 0x61 && b[o + 261] === 0x72) {
            if (zlib.crc32(b.subarray(o, o + 100)) % CHUNK_SPREAD === 0) return o;
        }
    }
    return -1;
}

/** The chunk boundaries of a whole tar (offsets where chunks start, after the first), for tests and tools. */
export function chunkCuts(tarBytes: Buffer): number[] {
    const cuts: number[] = [];
    for (let start = 0; ;) {
        const c = nextCut(tarBytes, start, start + BLOCK);
        if (c < 0) return cuts;
        cuts.push(c);
        start = c;
    }
}

/**
 * Compressed chunks of the last layer written for the same slot, reused byte for byte when a
 * chunk's uncompressed bytes and its dictionary (the 32 KiB of tar before it) are unchanged
 * (deflate at a fixed level, zlib version and room is a function of its input and dictionary, so
 * a reused chunk is exactly what deflating it afresh would give). One cache entry per slot (an
 * image's context and Dockerfile) and user: the previous blob and its index of chunks (sha256 of
 * the dictionary and tar bytes, offset, length, crc32 of the tar bytes, and a sha256 of that crc
 * and the compressed bytes). Every reused chunk is checked against that sha256; a mismatch (a torn
 * or damaged cache file) deflates that chunk afresh. A reused chunk's crc32 comes from its record
 * (combined into the trailer's: crc32Combine), so its tar bytes are not run through crc32 again.
 * THINLAYER_LAYER_REUSE=0 turns it off.
 */
export interface LayerReuse {
    /** Identifies the image: the same slot is the same app (e.g. context dir + Dockerfile). */
    slot: string;
    /** The cache directory (default: the stat cache's, cacheDir()). */
    dir?: string;
}

/** The chunk format and cutting rules: bump when either changes, so old cache entries are ignored. */
const REUSE_FORMAT = 3;

interface ChunkRecord {
    /** sha256 (hex) of the chunk's dictionary and tar bytes. */
    key: string;
    off: number;
    len: number;
    /** crc32 of its tar bytes (the gzip trailer's is combined from them: crc32Combine). */
    crc: number;
    /** sha256 (hex) of `crc` (4 bytes, little-endian) and the compressed bytes: both checked on reuse. */
    check: string;
}

interface ReuseIndex {
    format: number;
    zlib: string;
    level: number;
    chunks: ChunkRecord[];
}

function reuseFiles(r: LayerReuse): { blob: string; index: string } {
    const name = identitySlotName(r.slot);
    const dir = path.join(r.dir ?? cacheDir(), "layers");
    return { blob: path.join(dir, `${name}.gz`), index: path.join(dir, `${name}.json`) };
}

/** The reuse slot of an app's layer: its context directory and Dockerfile (ensure and the PR receipt share it). */
export function appLayerReuse(contextDir: string, dockerfile: string): LayerReuse {
    return { slot: `app\0${path.resolve(contextDir)}\0${path.resolve(dockerfile)}` };
}

export function layerReuseEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
    return env.THINLAYER_LAYER_REUSE !== "0";
}

/** A previous blob up to this size is read whole, once (one read, no allocation per chunk); a larger one chunk by chunk. */
const REUSE_READ_WHOLE = 64 * 1024 * 1024;

/** The previous layer's chunks by key, and a reader of their bytes; never throws (a miss). */
class ReuseSource {
    private fd: number | undefined;
    private whole: Buffer | undefined;
    private readonly byKey = new Map<string, ChunkRecord>();

    constructor(files: { blob: string; index: string }) {
        try {
            const idx = JSON.parse(fs.readFileSync(files.index, "utf8")) as ReuseIndex;
            if (idx.format !== REUSE_FORMAT || idx.zlib !== process.versions.zlib || idx.level !== GZIP_LEVEL) return;
            this.fd = fs.openSync(files.blob, "r");
            const size = fs.fstatSync(this.fd).size;
            if (size <= REUSE_READ_WHOLE) {
                const b = Buffer.allocUnsafe(size);
                if (fs.readSync(this.fd, b, 0, size, 0) === size) this.whole = b;
            }
            for (const m of idx.chunks) this.byKey.set(m.key, m);
        } catch {
            this.byKey.clear();
        }
    }

    /** The compressed bytes of a chunk with key `key`, checked, and its record; undefined on a miss. */
    take(key: string): { bytes: Buffer; record: ChunkRecord } | undefined {
        const m = this.byKey.get(key);
        if (m === undefined || this.fd === undefined) return undefined;
        try {
            let b: Buffer;
            if (this.whole !== undefined) {
                if (m.off + m.len > this.whole.length) return undefined;
                b = this.whole.subarray(m.off, m.off + m.len);
            } else {
                b = Buffer.allocUnsafe(m.len);
                if (fs.readSync(this.fd, b, 0, m.len, m.off) !== m.len) return undefined;
            }
            return Number.isInteger(m.crc) && chunkCheck(m.crc, b) === m.check ? { bytes: b, record: m } : undefined;
        } catch {
            return undefined;
        }
    }

    close(): void {
        if (this.fd !== undefined) fs.closeSync(this.fd);
        this.fd = undefined;
    }
}

/**
 * The few fs calls saveReuse makes, on libuv's thread pool: node:fs's callbacks promisified rather
 * than node:fs/promises, which (with the readline modules it loads) costs every CLI run ~3-4 ms
 * of start-up for these six calls.
 */
const fsp = {
    mkdir: promisify(fs.mkdir),
    writeFile: promisify(fs.writeFile),
    copyFile: promisify(fs.copyFile),
    rename: promisify(fs.rename),
};

/**
 * Saves a written layer as the slot's reuse entry (blob, then index; each by rename), on libuv's
 * thread pool while the caller goes on (e.g. pushes the layer). Best effort: never rejects.
 */
async function saveReuse(files: { blob: string; index: string }, blob: { file?: string; data?: Buffer }, chunks: ChunkRecord[]): Promise<void> {
    try {
        await fsp.mkdir(path.dirname(files.blob), { recursive: true });
        const tmp = `${files.blob}.${process.pid}.tmp`;
        if (blob.data !== undefined) await fsp.writeFile(tmp, blob.data);
        else await fsp.copyFile(blob.file as string, tmp);
        await fsp.rename(tmp, files.blob);
        const idx: ReuseIndex = { format: REUSE_FORMAT, zlib: process.versions.zlib, level: GZIP_LEVEL, chunks };
        await fsp.writeFile(`${files.index}.${process.pid}.tmp`, JSON.stringify(idx));
        await fsp.rename(`${files.index}.${process.pid}.tmp`, files.index);
        pruneReuse(path.dirname(files.blob));
    } catch {
        // A cache: a failed save only costs the next write its reuse.
    }
}

/** Apps whose last layer is kept; beyond it the least recently written go (each is an app's size). */
export const REUSE_KEEP = 32;

/** Keeps the REUSE_KEEP most recently written entries of a layers/ directory. */
function pruneReuse(dir: string): void {
    const indexes = fs.readdirSync(dir).filter((f) => f.endsWith(".json"));
    if (indexes.length <= REUSE_KEEP) return;
    const byAge = indexes.map((f) => ({ f, t: fs.statSync(path.join(dir, f)).mtimeMs })).sort((a, b) => b.t - a.t);
    for (const { f } of byAge.slice(REUSE_KEEP)) {
        fs.rmSync(path.join(dir, f), { force: true });
        fs.rmSync(path.join(dir, f.replace(/\.json$/, ".gz")), { force: true });
    }
}

/**
 * Chunks deflated at once: one per core, at most the size of libuv's thread pool (whose threads
 * run them). Only speed and memory depend on it, never the bytes.
 */
function gzipParallelism(env: NodeJS.ProcessEnv = process.env, cores = os.availableParallelism()): number {
    const pool = Number(env.UV_THREADPOOL_SIZE ?? 4);
    return Math.max(1, Math.min(cores, Number.isInteger(pool) && pool > 0 ? pool : 4));
}

/**
 * zlib's output space for a chunk of `n` bytes: room for all of it (deflate's and stored blocks'
 * worst case plus the sync flush), so zlib compresses the chunk in one pass on the thread pool
 * instead of coming back to the main thread — busy writing the tar — for more room every 16 KiB.
 * Part of the contract for stored blocks: zlib sizes them by the output space it has (with room
 * for everything: 64 KiB blocks, whatever the exact size); deflated output does not depend on it.
 * The layer tests check the bytes against one-shot deflateRawSync with ample room.
 */
function outputRoom(n: number): number {
    return n + (n >> 3) + (n >> 6) + 1024;
}

/** deflate's window: a chunk's dictionary is the tar's last WINDOW bytes before it. */
const WINDOW = 32 * 1024;

/** The layer's gzip header: deflate, no name, mtime 0, no extra flags, OS Unix (RFC 1952 §2.3). */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);

/** The end of the deflate stream after the last chunk's sync flush: an empty final block with fixed codes. */
const FINAL_BLOCK = Buffer.from([3, 0]);

/**
 * The tar, written into it block by block (append, or reserve/commit to read a file straight into
 * it), cut into content-defined chunks (see chunkCuts) that are deflated in parallel (zlib runs on
 * libuv's thread pool) or reused from the previous layer, and written out in order: one gzip
 * member whose deflate stream is the chunks' raw deflate output, each ended by a sync flush (a
 * byte boundary, the block open), then an empty final block and the gzip trailer (the tar's crc32
 * and size). Each chunk is deflated with the tar's WINDOW bytes before it as its dictionary, so
 * its back-references may reach into the chunk before, as in one unbroken stream (pigz writes its
 * gzip this way). The output depends only on the tar bytes and the level — not on timing, core
 * count or what was reused.
 */
class ParallelGzip {
    /** The pending tar bytes: `len` of them from `base` (the current chunk's start) in `buf`. */
    private buf = Buffer.allocUnsafe(CHUNK_MAX_BYTES + BLOCK);
    private base = 0;
    private len = 0;
    /** Whether a deflate still reads a chunk of `buf` (before `base`): then nothing is written over it. */
    private held = false;
    /** Where the cut scan resumes: every block before it was decided "no cut". */
    private scanFrom = BLOCK;
    /** The tar's last WINDOW bytes before the pending chunk (its dictionary), a copy of its own. */
    private dict = Buffer.alloc(0);
    /** Chunks started, in order: their work (reused, or deflated on the pool) and its result once done. */
    private readonly inFlight: Array<{ work: Promise<Finished>; done?: Finished }> = [];
    /** How many of inFlight are deflating, holding their tar bytes (bounded by maxInFlight), and who waits for one to finish. */
    private busy = 0;
    private readonly waiting: Array<() => void> = [];
    /** The chunks written, for the next write's reuse. */
    readonly records: ChunkRecord[] = [];
    reused = 0;
    deflated = 0;
    private outOff = 0;
    /** sha256 of the tar (the diff id), fed chunk by chunk in order, its crc32 (the gzip trailer's) and its size. */
    readonly tarHash = createHash("sha256");
    private crc = 0;
    tarSize = 0;
    /** tarSize at the last turn given to the event loop (room()). */
    private yieldedAt = 0;

    constructor(
        private readonly sink: (b: Buffer) => void,
        private readonly maxInFlight: number,
        private readonly source: ReuseSource | undefined,
    ) {}

    /**
     * Room for `n` bytes at the end of the pending tar, to write (e.g. read a file into) and then
     * commit. Nothing else may be appended before the commit; what is not committed is never used.
     */
    reserve(n: number): { buf: Buffer; off: number } {
        if (this.base + this.len + n > this.buf.length) {
            if (!this.held && this.len + n <= this.buf.length) {
                this.buf.copyWithin(0, this.base, this.base + this.len); // the chunks before are out: reuse the buffer
            } else {
                // A deflating chunk keeps its view of the old buffer; the pending bytes move to a new one.
                const grown = Buffer.allocUnsafe(Math.max(CHUNK_MAX_BYTES + BLOCK, this.len + n + CHUNK_MAX_BYTES));
                this.buf.copy(grown, 0, this.base, this.base + this.len);
                this.buf = grown;
                this.held = false;
            }
            this.base = 0;
        }
        return { buf: this.buf, off: this.base + this.len };
    }

    /** Adds the first `n` bytes of the reserved room, written by then, to the tar. */
    commit(n: number): void {
        this.len += n;
    }

    /** The header blocks of an entry without data (a directory, a symlink). */
    appendHeader(h: TarHeader): void {
        const n = headerBytes(h);
        const { buf, off } = this.reserve(n);
        writeHeader(buf, off, h);
        this.commit(n);
    }

    /** Zeros to the next 512-byte boundary of the tar (the data of an entry ends there). */
    pad(): void {
        const n = padded(this.len) - this.len;
        if (n > 0) {
            const { buf, off } = this.reserve(n);
            buf.fill(0, off, off + n);
            this.commit(n);
        }
    }

    private output(r: Finished): void {
        if (this.outOff === 0) {
            this.sink(GZIP_HEADER);
            this.outOff = GZIP_HEADER.length;
        }
        this.sink(r.gz);
        // Records (the key's and the check's sha256) only for a write that keeps its layer for reuse.
        if (this.source !== undefined)
            this.records.push({ key: r.key, off: this.outOff, len: r.gz.length, crc: r.crc, check: r.check ?? chunkCheck(r.crc, r.gz) });
        this.outOff += r.gz.length;
        if (r.check !== undefined) this.reused++;
        else this.deflated++;
    }

    /**
     * Starts one chunk: reused when the last layer had the same bytes after the same dictionary,
     * else deflated on the pool. True when the deflate still reads `chunk` (its buffer must not be
     * written meanwhile).
     */
    private start(chunk: Buffer): boolean {
        this.tarHash.update(chunk);
        this.tarSize += chunk.length;
        const dict = this.dict;
        // The next chunk's dictionary: copied, since the buffer is reused (a chunk holds at least
        // CHUNK_MIN_BYTES >= WINDOW, except the last, after which none follows).
        this.dict = chunk.length >= WINDOW ? Buffer.from(chunk.subarray(chunk.length - WINDOW)) : Buffer.concat([dict, chunk]).subarray(-WINDOW);
        // (sha256 here, not on the pool: WebCrypto's async digest first copies its input on this
        // thread, into fresh pages, which costs more than SHA-NI hashing it; measured.)
        // (The dictionary's length first: no chunk's key can be another's with the bytes moved across.)
        const key = this.source === undefined ? "" : createHash("sha256").update(`${dict.length}:`).update(dict).update(chunk).digest("hex");
        const hit = this.source?.take(key);
        // The trailer's crc32: a reused chunk's from its record (the same bytes), else computed.
        const crc = hit?.record.crc ?? zlib.crc32(chunk);
        this.crc = crc32Combine(this.crc, crc, chunk.length);
        if (hit !== undefined) {
            const done = { gz: hit.bytes, key, crc, check: hit.record.check };
            this.inFlight.push({ work: Promise.resolve(done), done });
            return false;
        }
        this.busy++;
        const slot: { work: Promise<Finished>; done?: Finished } = {
            work: deflateRawAsync(chunk, {
                ...chunkOptions(chunk),
                ...(dict.length > 0 ? { dictionary: dict } : {}),
                finishFlush: zlib.constants.Z_SYNC_FLUSH,
                chunkSize: outputRoom(chunk.length),
            })
                .then((gz) => (slot.done = { gz, key, crc }))
                .finally(() => {
                    this.busy--;
                    for (const w of this.waiting.splice(0)) w();
                }),
        };
        slot.work.catch(() => undefined); // awaited in order by cut() and end()
        this.inFlight.push(slot);
        return true;
    }

    /** Writes out the finished chunks at the head of the queue (in order: the first unfinished one stops it). */
    private flush(): void {
        while (this.inFlight[0]?.done !== undefined) this.output((this.inFlight.shift() as { done: Finished }).done);
    }

    /**
     * Makes room before the next chunk: waits while maxInFlight chunks still hold their tar
     * bytes (any of them finishing frees a slot), and while MAX_QUEUED finished ones wait behind
     * the oldest (reused chunks are only compressed bytes: the tar goes on while an edited chunk
     * deflates, instead of stalling behind it).
     */
    private async room(): Promise<void> {
        // Let the event loop run between chunks: the rest of the writing is synchronous, and a
        // caller's network I/O (the base mounts, the streamed upload of the chunks written so
        // far) would otherwise wait for the whole layer (measured: the upload opened only as the
        // layer ended, and ran after it instead of alongside).
        if (this.tarSize - this.yieldedAt >= YIELD_BYTES) {
            this.yieldedAt = this.tarSize;
            await new Promise<void>((r) => setImmediate(r));
        }
        this.flush();
        while (this.busy > this.maxInFlight) await new Promise<void>((r) => this.waiting.push(r));
        this.flush();
        while (this.inFlight.length > this.maxInFlight + MAX_QUEUED) this.output(await (this.inFlight.shift() as { work: Promise<Finished> }).work);
    }

    /** Starts every chunk the pending tar completes (a cut is decided), making room between them. */
    async cut(): Promise<void> {
        for (;;) {
            const view = this.buf.subarray(this.base, this.base + this.len);
            const c = nextCut(view, 0, this.scanFrom);
            if (c < 0) {
                this.scanFrom = Math.max(this.scanFrom, this.len - (this.len % BLOCK));
                return;
            }
            // The chunk's bytes stay where they are (a deflate reads them there); the pending tar
            // goes on after them, never copied per chunk (reserve moves it when it needs room).
            if (this.start(view.subarray(0, c))) this.held = true;
            this.base += c;
            this.len -= c;
            this.scanFrom = BLOCK;
            await this.room();
        }
    }

    /** The last chunk, then everything out, then the end of the stream and the gzip trailer. */
    async end(): Promise<void> {
        await this.cut();
        if (this.len > 0) this.start(this.buf.subarray(this.base, this.base + this.len));
        this.base = 0;
        this.len = 0;
        while (this.inFlight.length) this.output(await (this.inFlight.shift() as { work: Promise<Finished> }).work);
        const trailer = Buffer.alloc(FINAL_BLOCK.length + 8);
        FINAL_BLOCK.copy(trailer);
        trailer.writeUInt32LE(this.crc >>> 0, FINAL_BLOCK.length);
        trailer.writeUInt32LE(this.tarSize % 0x100000000, FINAL_BLOCK.length + 4);
        this.sink(trailer);
    }
}

/** ChunkRecord.check of a chunk. */
function chunkCheck(crc: number, gz: Buffer): string {
    const c = Buffer.allocUnsafe(4);
    c.writeUInt32LE(crc >>> 0);
    return createHash("sha256").update(c).update(gz).digest("hex");
}

/** Tar bytes started between two turns given to the event loop (ParallelGzip.room). */
const YIELD_BYTES = 512 * 1024;

/** Chunks (reused ones: compressed bytes only) that may wait behind the oldest one still deflating. */
const MAX_QUEUED = 64;

/** A chunk's compressed bytes, with the sha256 of those bytes when they were reused (already known). */
interface Finished {
    gz: Buffer;
    key: string;
    /** crc32 of the chunk's tar bytes. */
    crc: number;
    /** The record's check when reused (see ChunkRecord). */
    check?: string;
}

/** Deflate of a sample worse than this ratio: the chunk is incompressible (see chunkOptions). */
const INCOMPRESSIBLE_RATIO = 0.97;

/** zlib options of one deflate chunk. */
export interface ChunkOptions {
    level: number;
    strategy: number;
}

/**
 * How one chunk is compressed: GZIP_LEVEL, or for a chunk whose fixed sample does not compress
 * (already-compressed or random data) run-length coding only (level 1, Z_RLE): zlib then stores
 * the incompressible blocks as they are and codes only the zero runs of the tar headers and
 * padding, at a fraction of a real deflate's CPU (plain stored blocks would leave those runs
 * whole: ~0.4% more bytes than BuildKit's gzip on random files). A function of the bytes only, so
 * still reproducible.
 */
export function chunkOptions(chunk: Buffer): ChunkOptions {
    const SAMPLE = 8 * 1024;
    const normal = { level: GZIP_LEVEL, strategy: zlib.constants.Z_DEFAULT_STRATEGY };
    if (chunk.length < 4 * SAMPLE) return normal;
    // Four samples spread over the chunk, deflated together (one zlib stream: its set-up costs
    // more than deflating a sample at level 1).
    const at = (i: number) => Math.floor(((chunk.length - SAMPLE) * i) / 3);
    const sample = Buffer.concat([0, 1, 2, 3].map((i) => chunk.subarray(at(i), at(i) + SAMPLE)));
    const out = zlib.deflateRawSync(sample, { level: 1 }).length;
    return out / sample.length > INCOMPRESSIBLE_RATIO ? { level: 1, strategy: zlib.constants.Z_RLE } : normal;
}

/** Files up to this size are read whole, straight into the tar; larger ones a READ_CHUNK at a time. */
const SMALL_FILE = 4 * 1024 * 1024;

/** Read size for larger files. */
const READ_CHUNK = 1024 * 1024;

/** Reads from `fd` into `buf[off, off + n)` until full or at the end of the file: the bytes read. */
function readInto(fd: number, buf: Buffer, off: number, n: number, pos: number): number {
    let got = 0;
    while (got < n) {
        const r = fs.readSync(fd, buf, off + got, n - got, pos + got);
        if (r === 0) break;
        got += r;
    }
    return got;
}

/** Writes all of `b` at the file's current position (a write may take only part of it). */
function writeAll(fd: number, b: Buffer): void {
    for (let off = 0; off < b.length;) off += fs.writeSync(fd, b, off);
}

/**
 * Appends one file's entry: its header and data read straight into the tar, up to the size the
 * file had when opened. A file up to SMALL_FILE is read at once (one that shrinks meanwhile gives
 * what was there, as readFileSync does); a larger one a READ_CHUNK at a time, cut as it goes, and
 * one that shrinks is an error (its header already holds the size). Either way a file changed
 * while read makes ensure refuse the tag (its files are hashed again before the tag is put).
 */
async function appendFile(gz: ParallelGzip, h: Omit<TarHeader, "size" | "type">, src: string): Promise<void> {
    const fd = fs.openSync(src, "r");
    try {
        const size = fs.fstatSync(fd).size;
        const header: TarHeader = { ...h, type: "file", size };
        const hb = headerBytes(header);
        if (size <= SMALL_FILE) {
            const { buf, off } = gz.reserve(hb + size);
            const got = readInto(fd, buf, off + hb, size, 0);
            writeHeader(buf, off, { ...header, size: got });
            gz.commit(hb + got);
            gz.pad();
            return;
        }
        const { buf, off } = gz.reserve(hb);
        writeHeader(buf, off, header);
        gz.commit(hb);
        for (let pos = 0; pos < size;) {
            const want = Math.min(READ_CHUNK, size - pos);
            const r = gz.reserve(want);
            const got = readInto(fd, r.buf, r.off, want, pos);
            if (got < want) throw new Error(`${src} shrank while the layer was written (${size} bytes when opened, ${pos + got} there)`);
            gz.commit(got);
            pos += got;
            if (pos < size) await gz.cut();
        }
        gz.pad();
    } finally {
        fs.closeSync(fd);
    }
}

/**
 * Writes entries as a reproducible tar+gzip layer to `outFile`, or into memory when it is undefined.
 * `parallelism` (chunks deflated at once, default gzipParallelism()) changes speed, never bytes.
 */
export async function writeLayer(
    entries: readonly LayerEntry[],
    outFile: string | undefined,
    opts: {
        epoch?: number;
        parallelism?: number;
        reuse?: LayerReuse;
        /** Receives the blob's bytes in order as they are written (e.g. to stream them to a registry); never changes them. */
        onData?: (b: Buffer) => void;
    } = {},
): Promise<LayerBlob> {
    const sorted = normalizeEntries(entries);
    const mtime = opts.epoch ?? layerEpoch();
    const gzHash = createHash("sha256");
    const gzCount = { n: 0 };
    const fd = outFile === undefined ? undefined : fs.openSync(outFile, "w");
    const parts: Buffer[] = [];
    const reuse = opts.reuse && layerReuseEnabled() ? reuseFiles(opts.reuse) : undefined;
    const source = reuse ? new ReuseSource(reuse) : undefined;
    let gz: ParallelGzip;
    try {
        gz = new ParallelGzip(
            (b) => {
                gzHash.update(b);
                gzCount.n += b.length;
                if (fd !== undefined) writeAll(fd, b);
                else parts.push(b); // concatenated at the end (a view: copied then)
                opts.onData?.(b);
            },
            Math.max(1, opts.parallelism ?? gzipParallelism()),
            source,
        );
        // File system calls are synchronous here: libuv's thread pool runs the hash and deflate
        // jobs, and an async call would queue behind them for a whole chunk.
        for (const e of sorted) {
            const base = { name: e.dest.slice(1), mode: e.mode, uid: e.uid, gid: e.gid, uname: "", gname: "", mtime };
            const src = e.source;
            const st = e.type === "directory" || src === undefined ? undefined : fs.lstatSync(src);
            if (e.type === "directory") {
                gz.appendHeader({ ...base, type: "directory", size: 0 });
            } else if (e.type === "symlink" || st?.isSymbolicLink()) {
                gz.appendHeader({ ...base, type: "symlink", size: 0, mode: 0o777, linkname: e.linkname ?? fs.readlinkSync(src as string) });
            } else {
                if (src === undefined) throw new Error(`layer entry ${e.dest} has no source file`);
                await appendFile(gz, base, src);
            }
            await gz.cut();
        }
        const end = gz.reserve(END_OF_TAR);
        end.buf.fill(0, end.off, end.off + END_OF_TAR);
        gz.commit(END_OF_TAR);
        await gz.end();
    } finally {
        if (fd !== undefined) fs.closeSync(fd);
        source?.close();
    }
    const data = fd !== undefined ? undefined : Buffer.concat(parts);
    const saved = reuse ? saveReuse(reuse, { file: outFile, data }, gz.records) : Promise.resolve();
    return {
        saved,
        file: outFile ?? "",
        data,
        diffId: "sha256:" + gz.tarHash.digest("hex"),
        digest: "sha256:" + gzHash.digest("hex"),
        size: gzCount.n,
        tarSize: gz.tarSize,
        entries: sorted.length,
        chunks: { reused: gz.reused, deflated: gz.deflated },
    };
}
