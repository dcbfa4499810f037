/**
 * Content hashes of files: read in fixed-size chunks on a bounded number of worker threads (memory
 * is `threads x CHUNK` plus per-file metadata, whatever the file sizes), with an optional stat cache.
 *
 * The cache maps (device, inode) to (size, mtimeMs, ctimeMs, executable, sha256). An entry is
 * used only when all of these still match the file's lstat, so an edit (which always moves ctime)
 * means a re-read. Files whose ctime is within `racyMs` of the moment they were read are not
 * cached ("racily clean" in git's terms: a second write inside the same timestamp tick would be
 * invisible). The cache never changes a hash: a hit returns exactly what a read returned.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import type { Worker as WorkerT } from "node:worker_threads";
import picomatch from "picomatch";
import { byteOrder } from "./digest";
import type { InputFile } from "../model";
import { PROJECT_ROOT } from "../root";

const CHUNK = 1 << 20;
/**
 * Default racy window: a file (or directory) changed this recently is not cached. 2 s, the
 * coarsest timestamp granularity of a filesystem Linux mounts read-write (FAT); ext4, xfs, btrfs
 * and tmpfs tick in 1-10 ms.
 */
export const RACY_MS = 2000;
const CACHE_VERSION = 2;
/** Entries above this count are pruned to the ones seen by the current process. */
const CACHE_MAX_ENTRIES = 250_000;

export interface FileHashOptions {
    /** Use the stat cache (default true). */
    cache?: boolean;
    /** Parallel reads (default THINLAYER_HASH_CONCURRENCY or 16). */
    concurrency?: number;
    /** Racy window in ms (default RACY_MS): files changed this recently are not cached. */
    racyMs?: number;
    /** Worker threads for reading (default: one per CPU, at most `concurrency`; 1 = this thread). */
    threads?: number;
    /** Called with each file's lstat, as hashed (input snapshots record these). */
    onStat?: (rel: string, st: fs.Stats) => void;
}

export interface HashStats {
    hits: number;
    misses: number;
    bytesRead: number;
    /** Worker threads used for reading (0: read on the calling thread). */
    workers?: number;
    /** The whole result came from an input snapshot (lib/hashing/snapshot.ts): one lstat per file, nothing else. */
    snapshot?: boolean;
}

type CacheEntry = [size: number, mtimeMs: number, ctimeMs: number, exec: 0 | 1, sha256: string];

/** Where the cache file lives: $THINLAYER_CACHE_DIR, else node_modules/.cache/thinlayer, else $XDG_CACHE_HOME/thinlayer. */
export function cacheDir(): string {
    const env = process.env.THINLAYER_CACHE_DIR;
    if (env !== undefined && env !== "") return env;
    const nm = path.join(PROJECT_ROOT, "node_modules");
    if (fs.existsSync(nm)) return path.join(nm, ".cache", "thinlayer");
    const xdg = process.env.XDG_CACHE_HOME;
    return path.join(xdg !== undefined && xdg !== "" ? xdg : path.join(os.homedir(), ".cache"), "thinlayer");
}

/**
 * Who is looking (effective user, group and groups). What a read returns depends on permission
 * (a file one user cannot read fails to hash), so neither cache ever serves one user what another
 * user's reads produced: the stat cache file and the input snapshots are per identity.
 */
export function identity(): string[] {
    const groups = process.getgroups?.() ?? [];
    return [String(process.geteuid?.() ?? ""), String(process.getegid?.() ?? ""), [...groups].sort((a, b) => a - b).join(",")];
}

/** A cache file name for `slot` and this identity (snapshots, reused layers): runs by two users do not evict each other. */
export function identitySlotName(slot: string): string {
    return createHash("sha256").update(slot).update("\0").update(identity().join("/")).digest("hex").slice(0, 32);
}

/**
 * statfs f_type (Linux) of filesystems whose timestamps may not follow changes made elsewhere
 * (attribute caches of network filesystems, FUSE, VM shares): NFS, SMB, CIFS, SMB2, FUSE, 9p,
 * virtiofs, Ceph, AFS, kAFS, Coda, vboxsf, GPFS, Lustre, GFS2, OCFS2. Neither the stat cache nor
 * the input snapshots are used there: every file is read.
 */
const UNRELIABLE_FS = new Set([
    0x6969, 0x517b, 0xff534d42, 0xfe534d42, 0x65735546, 0x01021997, 0x6a656a63, 0x00c36400, 0x5346414f, 0x6b414653, 0x73757245, 0x786f4256, 0x47504653,
    0x0bd00bd0, 0x01161970, 0x7461636f,
]);

/** Whether a Linux statfs type is one where the caches are off (exported for tests). */
export function unreliableFsType(type: number): boolean {
    return UNRELIABLE_FS.has(type >>> 0);
}

/**
 * Whether `dir` is on a filesystem the caches can trust. Only Linux's f_type values are known;
 * elsewhere this says yes (set THINLAYER_SNAPSHOTS=0 or use --no-cache on network mounts).
 */
export function reliableFs(dir: string): boolean {
    if (process.platform !== "linux") return true;
    try {
        return !unreliableFsType(fs.statfsSync(dir).type);
    } catch {
        return false;
    }
}

/** The stat cache file for this identity (exported for tests). */
export function statCacheFile(): string {
    return path.join(cacheDir(), `filehash-v${CACHE_VERSION}-${createHash("sha256").update(identity().join("/")).digest("hex").slice(0, 12)}.json`);
}

/** The process-wide stat cache, loaded lazily and saved with `saveCache`. */
class StatCache {
    private entries = new Map<string, CacheEntry>();
    private seen = new Set<string>();
    private loaded = false;
    private dirty = false;
    /** This user's cache file did not exist when loaded: the first save also removes the legacy shared one. */
    private firstSave = false;
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
        } catch (e) {
            // Missing or corrupt cache: start empty; it only ever saves reads.
            this.firstSave = (e as NodeJS.ErrnoException).code === "ENOENT";
        }
    }

    get(key: string, st: fs.Stats): CacheEntry | undefined {
        const e = this.entries.get(key);
        if (e === undefined) return undefined;
        if (e[0] !== st.size || e[1] !== st.mtimeMs || e[2] !== st.ctimeMs) return undefined;
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
        const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
        try {
            // Private: hashes of files only this user may be able to read.
            fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
            fs.writeFileSync(tmp, JSON.stringify({ v: CACHE_VERSION, e: Object.fromEntries(this.entries) }), { mode: 0o600 });
            fs.renameSync(tmp, this.file);
            // The one cache of versions before per-user files: gone once this user has their own.
            if (this.firstSave) fs.rmSync(path.join(path.dirname(this.file), "filehash-v1.json"), { force: true });
            this.firstSave = false;
            this.dirty = false;
        } catch {
            // A read-only cache location costs speed, never correctness.
            fs.rmSync(tmp, { force: true });
        }
    }
}

let shared: StatCache | undefined;

function statCache(): StatCache {
    const file = statCacheFile();
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

/** Below this many bytes to read, hashing stays on the calling thread (a worker costs ~30 ms to start). */
const WORKER_MIN_BYTES = 32 * 1024 * 1024;

/**
 * Hashes `relPaths` (POSIX, relative to `root`); returns them sorted by path bytes. Symlinks are
 * hashed by their target text (Docker copies a link as a link).
 *
 * All files are lstat'ed first (synchronously: 20,000 lstat calls cost ~40 ms this way and ~150 ms
 * through promises); cache hits are done then. The misses are read in 1 MiB chunks, on worker
 * threads when there is enough to read (one per CPU, at most `concurrency`), else on this thread.
 */
export async function hashFiles(root: string, relPaths: readonly string[], opts: FileHashOptions = {}, stats?: HashStats): Promise<InputFile[]> {
    const useCache = (opts.cache ?? true) && reliableFs(root);
    const cache = useCache ? statCache() : undefined;
    const racyMs = opts.racyMs ?? RACY_MS;
    const concurrency = Math.max(1, opts.concurrency ?? (Number(process.env.THINLAYER_HASH_CONCURRENCY ?? "") || 16));
    const out: InputFile[] = new Array<InputFile>(relPaths.length);
    const misses: { i: number; abs: string; st: fs.Stats; key: string }[] = [];
    const rootSlash = root.endsWith(path.sep) ? root : root + path.sep;
    // A mount inside the context may be a filesystem the cache cannot trust: decided per device.
    const rootDev = useCache ? fs.statSync(root).dev : -1;
    const devOk = new Map<number, boolean>([[rootDev, true]]);
    const trusted = (st: fs.Stats, abs: string) => {
        let ok = devOk.get(st.dev);
        if (ok === undefined) devOk.set(st.dev, (ok = reliableFs(path.dirname(abs))));
        return ok;
    };
    for (let i = 0; i < relPaths.length; i++) {
        const rel = relPaths[i];
        const abs = rootSlash + rel;
        const st = fs.lstatSync(abs);
        opts.onStat?.(rel, st);
        const key = `${st.dev}:${st.ino}`;
        const hit = cache !== undefined && trusted(st, abs) ? cache.get(key, st) : undefined;
        if (hit !== undefined) {
            out[i] = { path: rel, size: hit[0], executable: hit[3] === 1, sha256: hit[4] };
            if (stats) stats.hits++;
            continue;
        }
        if (st.isSymbolicLink()) {
            // The target's bytes: a target that is not UTF-8 must not collapse into U+FFFD.
            const target = fs.readlinkSync(abs, { encoding: "buffer" });
            out[i] = { path: rel, size: target.length, executable: false, sha256: createHash("sha256").update(target).digest("hex") };
            if (stats) stats.misses++;
            continue;
        }
        if (!st.isFile()) throw new Error(`${abs}: not a regular file or symlink`);
        misses.push({ i, abs, st, key });
    }
    const readStart = Date.now();
    const bytes = misses.reduce((n, m) => n + m.st.size, 0);
    const workers = opts.threads ?? Math.min(concurrency, os.availableParallelism(), Math.ceil(misses.length / 64));
    const threaded = bytes >= WORKER_MIN_BYTES && workers > 1;
    if (stats) stats.workers = threaded ? workers : 0;
    const results = threaded
        ? await hashInWorkers(
              misses.map((m) => m.abs),
              workers,
          )
        : misses.map((m) => hashSync(m.abs));
    for (let k = 0; k < misses.length; k++) {
        const { i, st, key } = misses[k];
        const [sha, size] = results[k];
        const exec = (st.mode & 0o100) !== 0;
        out[i] = { path: relPaths[i], size, executable: exec, sha256: sha };
        if (stats) {
            stats.misses++;
            stats.bytesRead += size;
        }
        // Racily clean: a change within the timestamp tick of our read would be invisible later.
        if (cache !== undefined && st.ctimeMs < readStart - racyMs && size === st.size && trusted(st, misses[k].abs)) {
            cache.set(key, [size, st.mtimeMs, st.ctimeMs, exec ? 1 : 0, sha]);
        }
    }
    return byteOrder(out, (f) => f.path);
}

const syncBuf = Buffer.allocUnsafe(CHUNK);

/** [sha256 hex, bytes read] of one file, read in CHUNK-sized pieces. */
function hashSync(abs: string): [string, number] {
    const h = createHash("sha256");
    const fd = fs.openSync(abs, "r");
    let size = 0;
    try {
        for (;;) {
            const n = fs.readSync(fd, syncBuf, 0, CHUNK, null);
            if (n === 0) break;
            h.update(n === CHUNK ? syncBuf : syncBuf.subarray(0, n));
            size += n;
        }
    } finally {
        fs.closeSync(fd);
    }
    return [h.digest("hex"), size];
}

/**
 * The worker: plain JS over node builtins only (so it needs no TypeScript loader). Takes batches
 * of absolute paths, answers [sha256, size] pairs; one CHUNK buffer per worker bounds memory.
 */
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const fs = require("node:fs");
const { createHash } = require("node:crypto");
const CHUNK = ${CHUNK};
const buf = Buffer.allocUnsafe(CHUNK);
parentPort.on("message", (batch) => {
    const out = [];
    try {
        for (const abs of batch) {
            const h = createHash("sha256");
            const fd = fs.openSync(abs, "r");
            let size = 0;
            try {
                for (;;) {
                    const n = fs.readSync(fd, buf, 0, CHUNK, null);
                    if (n === 0) break;
                    h.update(n === CHUNK ? buf : buf.subarray(0, n));
                    size += n;
                }
            } finally { fs.closeSync(fd); }
            out.push([h.digest("hex"), size]);
        }
        parentPort.postMessage({ ok: out });
    } catch (e) {
        parentPort.postMessage({ error: String(e && e.message || e) });
    }
});
`;

/** Hashes files on `n` worker threads, handing out batches so a few large files do not stall one worker. */
async function hashInWorkers(files: string[], n: number): Promise<[string, number][]> {
    const results: [string, number][] = new Array<[string, number]>(files.length);
    const BATCH = 256;
    let next = 0;
    const run = (): Promise<void> =>
        new Promise((resolve, reject) => {
            // node:worker_threads only when workers read (an edit-one run reads on this thread).
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const { Worker } = require("node:worker_threads") as { Worker: typeof WorkerT };
            const w = new Worker(WORKER_SOURCE, { eval: true });
            let start = 0;
            const send = () => {
                if (next >= files.length) {
                    void w.terminate();
                    resolve();
                    return;
                }
                start = next;
                next = Math.min(files.length, next + BATCH);
                w.postMessage(files.slice(start, next));
            };
            w.on("message", (m: { ok?: [string, number][]; error?: string }) => {
                if (m.error !== undefined || m.ok === undefined) {
                    void w.terminate();
                    reject(new Error(`hashing failed: ${m.error ?? "no result"}`));
                    return;
                }
                for (let k = 0; k < m.ok.length; k++) results[start + k] = m.ok[k];
                send();
            });
            w.on("error", reject);
            send();
        });
    await Promise.all(Array.from({ length: n }, run));
    return results;
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
