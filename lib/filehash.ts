/**
 * Content hashes of files: streamed in fixed-size chunks with bounded concurrency (memory is
 * `concurrency x CHUNK`, whatever the file sizes), with an optional stat cache.
 *
 * The cache maps (device, inode) to (size, mtime ns, ctime ns, executable, sha256). An entry is
 * used only when all of these still match the file's lstat, so an edit (which always moves ctime)
 * means a re-read. Files whose ctime is within `racyMs` of the moment they were read are not
 * cached ("racily clean" in git's terms: a second write inside the same timestamp tick would be
 * invisible). The cache never changes a hash: a hit returns exactly what a read returned.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import picomatch from "picomatch";
import { byteOrder } from "./digest";
import type { InputFile } from "./plan";

const CHUNK = 1 << 20;
const CACHE_VERSION = 1;
/** Entries above this count are pruned to the ones seen by the current process. */
const CACHE_MAX_ENTRIES = 250_000;

export interface FileHashOptions {
    /** Use the stat cache (default true). */
    cache?: boolean;
    /** Parallel reads (default THINLAYER_HASH_CONCURRENCY or 16). */
    concurrency?: number;
    /** Racy window in ms (default 1000): files changed this recently are not cached. */
    racyMs?: number;
}

export interface HashStats {
    hits: number;
    misses: number;
    bytesRead: number;
}

type CacheEntry = [size: number, mtimeNs: string, ctimeNs: string, exec: 0 | 1, sha256: string];

/** Where the cache file lives: $THINLAYER_CACHE_DIR, else node_modules/.cache/thinlayer, else $XDG_CACHE_HOME/thinlayer. */
export function cacheDir(): string {
    const env = process.env.THINLAYER_CACHE_DIR;
    if (env !== undefined && env !== "") return env;
    const nm = path.resolve(__dirname, "..", "node_modules");
    if (fs.existsSync(nm)) return path.join(nm, ".cache", "thinlayer");
    const xdg = process.env.XDG_CACHE_HOME;
    return path.join(xdg !== undefined && xdg !== "" ? xdg : path.join(os.homedir(), ".cache"), "thinlayer");
}

/** The process-wide stat cache, loaded lazily and saved with `saveCache`. */
class StatCache {
    private entries = new Map<string, CacheEntry>();
    private seen = new Set<string>();
    private loaded = false;
    private dirty = false;
    readonly file: string;

    constructor(file: string) {
        this.file = file;
    }

    load(): void {
        if (this.loaded) return;
        this.loaded = true;
        try {
            const doc = JSON.parse(fs.readFileSync(this.file, "utf8")) as { v: number; e: Record<string, CacheEntry> };
            if (doc.v === CACHE_VERSION) this.entries = new Map(Object.entries(doc.e));
        } catch {
            // Missing or corrupt cache: start empty; it only ever saves reads.
        }
    }

    get(key: string, st: fs.BigIntStats): CacheEntry | undefined {
        const e = this.entries.get(key);
        if (e === undefined) return undefined;
        if (e[0] !== Number(st.size) || e[1] !== String(st.mtimeNs) || e[2] !== String(st.ctimeNs)) return undefined;
        this.seen.add(key);
        return e;
    }

    set(key: string, e: CacheEntry): void {
        this.entries.set(key, e);
        this.seen.add(key);
        this.dirty = true;
    }

    save(): void {
        if (!this.dirty) return;
        if (this.entries.size > CACHE_MAX_ENTRIES) {
            for (const k of [...this.entries.keys()]) if (!this.seen.has(k)) this.entries.delete(k);
        }
        const tmp = `${this.file}.${process.pid}.tmp`;
        try {
            fs.mkdirSync(path.dirname(this.file), { recursive: true });
            fs.writeFileSync(tmp, JSON.stringify({ v: CACHE_VERSION, e: Object.fromEntries(this.entries) }));
            fs.renameSync(tmp, this.file);
            this.dirty = false;
        } catch {
            // A read-only cache location costs speed, never correctness.
            fs.rmSync(tmp, { force: true });
        }
    }
}

let shared: StatCache | undefined;

function statCache(): StatCache {
    const file = path.join(cacheDir(), "filehash-v1.json");
    if (shared === undefined || shared.file !== file) shared = new StatCache(file);
    shared.load();
    return shared;
}

/** Writes the stat cache if anything was added (call once at the end of a command). */
export function saveCache(): void {
    shared?.save();
}

/** Forgets the in-memory cache (tests and benchmarks: the next use reloads it from disk). */
export function resetCacheForTests(): void {
    shared = undefined;
}

/**
 * Hashes `relPaths` (POSIX, relative to `root`); returns them sorted by path bytes. Symlinks are
 * hashed by their target text (Docker copies a link as a link).
 */
export async function hashFiles(root: string, relPaths: readonly string[], opts: FileHashOptions = {}, stats?: HashStats): Promise<InputFile[]> {
    const useCache = opts.cache ?? true;
    const cache = useCache ? statCache() : undefined;
    const racyNs = BigInt(opts.racyMs ?? 1000) * 1_000_000n;
    const concurrency = Math.max(1, opts.concurrency ?? (Number(process.env.THINLAYER_HASH_CONCURRENCY ?? "") || 16));
    const out: InputFile[] = new Array<InputFile>(relPaths.length);
    let next = 0;

    const worker = async (): Promise<void> => {
        const buf = Buffer.allocUnsafe(CHUNK);
        while (next < relPaths.length) {
            const i = next++;
            const rel = relPaths[i];
            const abs = path.join(root, rel);
            const st = await fs.promises.lstat(abs, { bigint: true });
            const exec = (Number(st.mode) & 0o100) !== 0;
            const key = `${st.dev}:${st.ino}`;
            const hit = cache?.get(key, st);
            if (hit !== undefined) {
                if (stats) stats.hits++;
                out[i] = { path: rel, size: hit[0], executable: hit[3] === 1, sha256: hit[4] };
                continue;
            }
            const wallStartNs = BigInt(Date.now()) * 1_000_000n;
            let sha: string;
            let size: number;
            if (st.isSymbolicLink()) {
                const target = await fs.promises.readlink(abs);
                sha = createHash("sha256").update(target).digest("hex");
                size = Buffer.byteLength(target);
            } else if (st.isFile()) {
                ({ sha, size } = await hashContent(abs, buf));
            } else {
                throw new Error(`${abs}: not a regular file or symlink`);
            }
            if (stats) {
                stats.misses++;
                stats.bytesRead += size;
            }
            out[i] = { path: rel, size, executable: st.isSymbolicLink() ? false : exec, sha256: sha };
            if (cache !== undefined && st.ctimeNs < wallStartNs - racyNs && BigInt(size) === st.size) {
                cache.set(key, [size, String(st.mtimeNs), String(st.ctimeNs), out[i].executable ? 1 : 0, sha]);
            }
        }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, relPaths.length) }, worker));
    return byteOrder(out, (f) => f.path);
}

async function hashContent(abs: string, buf: Buffer): Promise<{ sha: string; size: number }> {
    const h = createHash("sha256");
    const fh = await fs.promises.open(abs, "r");
    let size = 0;
    try {
        for (;;) {
            const { bytesRead } = await fh.read(buf, 0, buf.length, null);
            if (bytesRead === 0) break;
            h.update(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
            size += bytesRead;
        }
    } finally {
        await fh.close();
    }
    return { sha: h.digest("hex"), size };
}

/** Files (POSIX paths relative to `root`) matching any of `globs`; `.git` is never walked. */
export async function listFilesByGlobs(root: string, globs: readonly string[]): Promise<string[]> {
    const isMatch = picomatch(globs as string[], { dot: false });
    const out: string[] = [];
    const walk = async (dirRel: string): Promise<void> => {
        const entries = await fs.promises.readdir(path.join(root, dirRel), { withFileTypes: true });
        await Promise.all(
            entries.map(async (e) => {
                const rel = dirRel === "" ? e.name : `${dirRel}/${e.name}`;
                if (e.isDirectory()) {
                    if (e.name !== ".git" && e.name !== "node_modules") await walk(rel);
                } else if ((e.isFile() || e.isSymbolicLink()) && isMatch(rel)) {
                    out.push(rel);
                }
            }),
        );
    };
    await walk("");
    return byteOrder(out, (p) => p);
}
